"""Detectors: pure functions of arrays. No I/O, no clock, no logging."""
