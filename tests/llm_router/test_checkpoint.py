"""The shipped checkpoints load and beat large-only on the stable workload."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from hostagent.llm.router.dqn import (  # noqa: E402
    DEFAULT_CHECKPOINT,
    DELAY_AWARE_CHECKPOINT,
    load_router,
)
from hostagent.llm.router.emulator import simulate  # noqa: E402
from hostagent.llm.router.metrics import mean_reward  # noqa: E402
from hostagent.llm.router.policies import static  # noqa: E402
from hostagent.llm.router.tasks import LARGE  # noqa: E402
from hostagent.llm.router.workloads import stable, wan_delay  # noqa: E402


@pytest.mark.parametrize("path", [DEFAULT_CHECKPOINT, DELAY_AWARE_CHECKPOINT])
def test_checkpoint_is_small_and_documented(path) -> None:
    assert path.stat().st_size < 400_000
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["seed"] == 1
    assert meta["config"]["hidden"] == 256
    assert meta["command"].startswith("python -m hostagent.llm.router.train")


def test_trained_router_beats_large_only_at_8_per_second() -> None:
    router = load_router(DEFAULT_CHECKPOINT)
    arrivals = stable(8, seed=1)
    ours = mean_reward(simulate(arrivals, router).rewards)
    large = mean_reward(simulate(arrivals, static(LARGE)).rewards)
    assert ours > large + 0.2
    # and it still picks the large model when the cluster is idle
    low = simulate(stable(0.25, seed=1), router)
    assert sum(o.size == LARGE for o in low.outcomes) / len(low.outcomes) > 0.8


def test_delay_aware_router_loads_and_uses_the_delay() -> None:
    router = load_router(DELAY_AWARE_CHECKPOINT)
    assert router.delay_aware
    arrivals = stable(8, seed=1, delay=wan_delay)
    ours = mean_reward(simulate(arrivals, router).rewards)
    large = mean_reward(simulate(arrivals, static(LARGE)).rewards)
    assert ours > large + 0.2
