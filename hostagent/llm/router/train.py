"""Train the DQN router on the emulator and save a checkpoint (with its settings as JSON).

    python -m hostagent.llm.router.train [--episodes N] [--seed S] [--out PATH]
        [--delay-aware]

The shipped checkpoints were made with this command (their JSON records how):
`checkpoints/router.pt` with the defaults, `checkpoints/router_netdelay.pt` with
`--delay-aware` (requests spend a random time in the network; the router sees it).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from hostagent.llm.router.dqn import (
    DEFAULT_CHECKPOINT,
    DELAY_AWARE_CHECKPOINT,
    TrainConfig,
    load_router,
    save_checkpoint,
    train,
)
from hostagent.llm.router.emulator import simulate
from hostagent.llm.router.metrics import mean_reward
from hostagent.llm.router.policies import static
from hostagent.llm.router.tasks import LARGE
from hostagent.llm.router.workloads import stable


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m hostagent.llm.router.train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=defaults.episodes)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--episode-s", type=float, default=defaults.episode_s,
                        help="simulated seconds per episode")
    parser.add_argument("--delay-aware", action="store_true",
                        help="train with network delays and let the router see them")
    parser.add_argument("--out", type=Path, help=f"checkpoint (default {DEFAULT_CHECKPOINT} "
                        f"or, with --delay-aware, {DELAY_AWARE_CHECKPOINT})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    import torch

    torch.set_num_threads(args.threads)
    config = TrainConfig(episodes=args.episodes, seed=args.seed, episode_s=args.episode_s,
                         delay_aware=args.delay_aware, network_delay=args.delay_aware)
    out = args.out or (DELAY_AWARE_CHECKPOINT if args.delay_aware else DEFAULT_CHECKPOINT)
    started = time.monotonic()
    net = train(config)
    seconds = time.monotonic() - started
    check = {}
    save_checkpoint(out, net, config, {})
    router = load_router(out)
    for rate in (2, 8, 32):
        arrivals = stable(rate, seed=1)
        check[str(rate)] = {"dqn": round(mean_reward(simulate(arrivals, router).rewards), 4),
                            "large-only": round(mean_reward(
                                simulate(arrivals, static(LARGE)).rewards), 4)}
    save_checkpoint(out, net, config, {
        "command": " ".join(["python -m hostagent.llm.router.train", *(argv or sys.argv[1:])]),
        "training_seconds": round(seconds, 1), "torch": torch.__version__,
        "machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
        "stable_check_seed1": check})
    print(f"wrote {out} and {out.with_suffix('.json')} ({seconds:.0f} s); "
          f"stable workload, seed 1, mean reward: "
          + ", ".join(f"{r}/s dqn {v['dqn']:.3f} vs large-only {v['large-only']:.3f}"
                      for r, v in check.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
