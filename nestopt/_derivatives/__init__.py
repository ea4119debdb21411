"""The algebra of the composition and of the response curvature (DESIGN 2, 3, 7, 8)."""
