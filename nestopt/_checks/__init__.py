"""Checks of derivatives, hypergradients and responses against independent computations."""
