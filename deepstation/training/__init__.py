"""Training: device and precision, the loop, checkpoints, metrics."""
