"""Metric specs: metric files (config/) resolved against the plug-in registries.

This is where configuration meets the stage packages: `config/` parses and
validates files and imports none of them; `specs/` looks each `type` up in the
collector, detector and channel registries and validates its `params`.
"""
