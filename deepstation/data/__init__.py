"""Data: sources -> split -> one codec per input and output -> tensors."""
