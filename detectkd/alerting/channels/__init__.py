"""Notification channels. One module per channel, one line in `registry`."""
