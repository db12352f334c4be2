"""Collectors: fetch rows for a window of periods from a source."""
