"""Models: one encoder per input, a combiner, one head per output."""
