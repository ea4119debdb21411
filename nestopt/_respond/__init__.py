"""Solving levels for fixed upper variables."""
