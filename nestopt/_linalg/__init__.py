"""Factorizations, triangular and Krylov solves, sparse blocks and Jacobian systems."""
