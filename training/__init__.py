"""Training the reasoning head on synthetic tasks (accelerate: CPU, one GPU, or many)."""
