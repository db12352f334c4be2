"""Benchmarks: scripts that print numbers (see docs/benchmarks.md)."""
