"""Training the reasoning head on synthetic and real-task episodes (accelerate: CPU, one GPU, or many)."""
