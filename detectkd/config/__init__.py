"""Config: metric files, profiles, daemon settings, and the reload diff."""
