"""llmdissect: measure LLM training, fine-tuning and serving runtime, cell by cell."""

__version__ = "0.1.0"
