"""Helpers the tests share: metric files, real servers, the daemon in a process or in-process.

Test modules import from here, never from another test module (tests/unit/test_layers.py
checks it); conftest.py files keep only the fixtures, built on these helpers."""
