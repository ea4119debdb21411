"""How a hypergradient is computed: method objects, runs, and the entry points."""
