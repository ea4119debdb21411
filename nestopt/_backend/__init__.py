"""Which array library and device nestopt uses; starting points and host copies."""
