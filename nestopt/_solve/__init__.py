"""The top level: the outer loop, its optimizers, reports and results."""
