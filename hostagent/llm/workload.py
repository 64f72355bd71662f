"""The seed thesis's LLM traffic classes and a seeded request mix.

Three classes share one connection: real-time short requests (8 KB, 1 s
deadline, most urgent), free-tier short requests (8 KB, 2 s) and long requests
(102.4 KB, 7 s). Priorities follow PIFO ranks: 0 is served first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class TrafficClass:
    """A request class: payload size each way, deadline from issue, and priority."""

    name: str
    size: int
    deadline_s: float
    priority: int


CLASSES: tuple[TrafficClass, ...] = (
    TrafficClass("realtime", 8 * 1024, 1.0, 0),
    TrafficClass("free", 8 * 1024, 2.0, 1),
    TrafficClass("long", round(102.4 * 1024), 7.0, 2),
)
CLASS_BY_NAME = {c.name: c for c in CLASSES}


@dataclass(frozen=True)
class Request:
    """One request of the mix: its index and class."""

    index: int
    cls: TrafficClass


def request_mix(count: int = 90, seed: int = 1,
                classes: tuple[TrafficClass, ...] = CLASSES) -> list[Request]:
    """`count` requests whose classes are drawn uniformly at random with `seed`."""
    if count < 0:
        raise ValueError("request count must be >= 0")
    rng = random.Random(seed)
    return [Request(i, rng.choice(classes)) for i in range(count)]
