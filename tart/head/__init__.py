"""The reasoning head: the model, the projection into its inputs, the test-time ensemble, loading and warm starts."""
