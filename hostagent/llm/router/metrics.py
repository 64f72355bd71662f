"""Reward accounting: mean reward and the share of windows that meet a quality level."""

from __future__ import annotations

from collections.abc import Sequence

#: The seed's Table 2 quality levels (average normalized reward over a window).
QUALITY_LEVELS: tuple[float, ...] = (1.00, 0.99, 0.98, 0.96, 0.94)
WINDOW = 20


def mean_reward(rewards: Sequence[float]) -> float:
    """Mean reward per request (0 without requests)."""
    return sum(rewards) / len(rewards) if rewards else 0.0


def window_shares(rewards: Sequence[float], window: int = WINDOW,
                  levels: Sequence[float] = QUALITY_LEVELS) -> dict[float, float]:
    """Share of consecutive, non-overlapping windows of `window` requests (in arrival
    order; an incomplete last window is left out) whose mean reward is >= each level."""
    means = [sum(rewards[i:i + window]) / window
             for i in range(0, len(rewards) - window + 1, window)]
    if not means:
        return {level: 0.0 for level in levels}
    return {level: sum(m >= level - 1e-9 for m in means) / len(means) for level in levels}
