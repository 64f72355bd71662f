"""The router's state vector, without torch (shared by training and inference).

Per the seed: the batch size at each model (here the load of every replica, sorted
within a size so that the order of GPUs does not matter), the task (one-hot) and the
estimated arrival rate. The delay-aware router adds the request's network time as a
share of its deadline (the seed's stated future work).
"""

from __future__ import annotations

import math

from hostagent.llm.router.emulator import Observation
from hostagent.llm.router.tasks import SIZES, TASKS


def feature_size(gpus: int = 4, delay_aware: bool = False) -> int:
    """Length of the state vector."""
    return len(SIZES) * gpus + len(TASKS) + 1 + int(delay_aware)


def features(obs: Observation, delay_aware: bool = False) -> list[float]:
    """The state vector of `obs`, every entry of order 1."""
    out: list[float] = []
    for row in obs.batches:
        out += [math.log1p(b) / 3 for b in sorted(row)]
    out += [1.0 if t == obs.task else 0.0 for t in range(len(TASKS))]
    out.append(math.log1p(obs.rate) / 4)
    if delay_aware:
        out.append(min(obs.net_delay / obs.budget, 2.0))
    return out
