"""Settings, the dunning policy file and user-facing texts."""
