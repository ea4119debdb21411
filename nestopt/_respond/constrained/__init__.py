"""The engine of constrained levels (DESIGN 9)."""
