"""Tasks, model sizes and rewards of the seed thesis's router experiment (its Table 1).

Rewards are each model's accuracy on the task normalized by the large model's, so the
large model always earns 1.00 and the router trades quality for latency.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Model sizes, the router's actions, in action order.
SIZES: tuple[str, ...] = ("small", "medium", "large")
SMALL, MEDIUM, LARGE = range(3)
#: The seed's models and their parameter counts (billions), which drive the latency model.
MODEL_NAMES: tuple[str, ...] = ("OPT-125M", "OPT-1.3B", "OPT-6.7B")
PARAMS_B: tuple[float, ...] = (0.125, 1.3, 6.7)


@dataclass(frozen=True)
class Task:
    """A task and the normalized accuracy of each model size on it (small, medium, large)."""

    name: str
    rewards: tuple[float, float, float]


TASKS: tuple[Task, ...] = (
    Task("HellaSwag", (0.45, 0.78, 1.00)),
    Task("COPA", (0.80, 0.95, 1.00)),
    Task("PIQA", (0.82, 0.96, 1.00)),
    Task("OpenBookQA", (0.70, 0.94, 1.00)),
)
TASK_BY_NAME = {t.name: t for t in TASKS}
#: The high-priority task in the end-to-end experiment (the seed's Tables 3 and 4).
HIGH_PRIORITY_TASK = TASKS.index(TASK_BY_NAME["OpenBookQA"])


def reward(task: int, size: int, deadline_met: bool) -> float:
    """The seed's reward: the chosen model's normalized accuracy if on time, else 0."""
    return TASKS[task].rewards[size] if deadline_met else 0.0
