"""The model and its training: the two towers, the losses, the batches and the training loop."""
