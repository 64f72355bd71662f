"""LLM serving workload: a front-end that sends requests as QUIC streams, a back-end that
answers them, TLS-over-TCP baselines, and the traffic-class experiment of the seed thesis."""
