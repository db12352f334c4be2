"""Alerting: per-series state machine, the outbox, and channels."""
