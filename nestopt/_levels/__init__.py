"""The user's description of a problem: levels, oracles, bounds and constraint rows."""
