"""Training measurements: one timed loop, one batch search, one OOM handler for every framework."""
