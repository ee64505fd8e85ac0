"""The walking network: ``graph`` (WalkNetwork, build, cache) and ``search`` (graph search on CSR arrays)."""
