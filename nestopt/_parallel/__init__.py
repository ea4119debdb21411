"""Many solves at once: scenario sweeps and multistart."""
