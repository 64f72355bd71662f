"""Learned model-selection router for the LLM back-end (the seed thesis's first chapter).

- `tasks`: the four tasks and the seed's Table 1 rewards, the three model sizes.
- `emulator`: a discrete-event emulator of 4 GPUs serving a small, medium and large model
  each, with a latency model of model size and batch size (no torch, no sleeping).
- `workloads`: seeded stable (Poisson) and unpredictable request streams.
- `metrics`: reward accounting and the windowed-quality table.
- `policies`: the router's observation and the static baselines.
- `dqn` / `train`: the DQN router (PyTorch on the CPU) and its training command.
- `serving`: a back-end that consults the router per request over QUIC and TLS/TCP.
"""
