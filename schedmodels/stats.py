"""The summary statistics every table prints (the experiments, the port model, the LLM
workload's report): percentiles and quartiles of latencies, completion times and round
trips, all with one interpolation so that tables agree. Here, on a low floor, so that
hostagent/ and the models can use it as well as the experiments."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolated linearly between the closest ranks
    (`statistics.quantiles`' "inclusive" method, numpy's default); None without values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def quartiles(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(25th, 50th, 75th percentile), or None without values."""
    if not values:
        return None
    q1, q2, q3 = (percentile(values, q) for q in (25, 50, 75))
    assert q1 is not None and q2 is not None and q3 is not None
    return (q1, q2, q3)
