"""Frozen language models: which model a name means, loading it once, and embedding texts with it."""
