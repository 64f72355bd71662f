"""Seeded router workloads: stable (Poisson at one rate) and unpredictable (random phases).

Tasks are drawn uniformly from the four tasks. An optional network-delay sampler gives
each request the time it spends in the network, for the delay-aware experiments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from hostagent.llm.router.emulator import Arrival
from hostagent.llm.router.tasks import TASKS

#: The stable workload's sweep of arrival rates (requests/s), 40 s each.
STABLE_RATES: tuple[float, ...] = (0.25, 0.5, 1, 2, 4, 8, 12, 16, 24, 32, 48)
STABLE_DURATION_S = 40.0

#: Draws one request's network time (s) from a random generator.
DelaySampler = Callable[[random.Random], float]


def no_delay(rng: random.Random) -> float:
    """No network: the request arrives at the back-end when it is issued."""
    return 0.0


def wan_delay(rng: random.Random) -> float:
    """Network time (both ways) of a request: half near (0-0.2 s), half far (0.2-1.0 s).

    A calibrated assumption standing in for a congested access link such as the 5 Mbit/s,
    50 ms link of the traffic-class experiment, where queueing behind other requests
    adds up to about a second.
    """
    return rng.uniform(0.0, 0.2) if rng.random() < 0.5 else rng.uniform(0.2, 1.0)


def poisson(rate: float, start: float, duration: float, rng: random.Random,
            first_index: int = 0, delay: DelaySampler = no_delay) -> list[Arrival]:
    """Poisson arrivals at `rate` per second in [start, start + duration)."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    out: list[Arrival] = []
    t = start + rng.expovariate(rate)
    while t < start + duration:
        out.append(Arrival(first_index + len(out), t, rng.randrange(len(TASKS)), delay(rng)))
        t += rng.expovariate(rate)
    return out


def stable(rate: float, seed: int = 1, duration: float = STABLE_DURATION_S,
           delay: DelaySampler = no_delay) -> list[Arrival]:
    """The stable workload: Poisson at `rate` requests/s for `duration` s."""
    return poisson(rate, 0.0, duration, random.Random(f"stable-{rate}-{seed}"), delay=delay)


@dataclass(frozen=True)
class Phase:
    """A stretch of an unpredictable workload at one Poisson rate."""

    start: float
    duration: float
    rate: float


def unpredictable(seed: int = 1, duration: float = 600.0,
                  rates: tuple[float, float] = (0.25, 48.0),
                  phase_s: tuple[float, float] = (5.0, 60.0),
                  delay: DelaySampler = no_delay) -> tuple[list[Arrival], list[Phase]]:
    """The unpredictable workload: phases whose rate (log-uniform in `rates`) and length
    (uniform in `phase_s`) are drawn at random, for `duration` s in all."""
    rng = random.Random(f"unpredictable-{seed}")
    arrivals: list[Arrival] = []
    phases: list[Phase] = []
    t = 0.0
    while t < duration:
        length = min(rng.uniform(*phase_s), duration - t)
        rate = math.exp(rng.uniform(math.log(rates[0]), math.log(rates[1])))
        phases.append(Phase(t, length, rate))
        arrivals += poisson(rate, t, length, rng, len(arrivals), delay)
        t += length
    return arrivals, phases
