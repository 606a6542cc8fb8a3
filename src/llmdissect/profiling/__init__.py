"""Profiling: torch.profiler traces of training steps and what they say (phases, idle time)."""
