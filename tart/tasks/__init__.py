"""What the head trains on: synthetic tasks, the prior of task families, and episodes from the real-task bank."""
