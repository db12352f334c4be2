"""The runtime: one slot per metric, the runner, the judging core, reload, scheduling."""
