"""End-host agents: QUIC stream schedulers, MASQUE client/proxy, targets, LLM workload."""
