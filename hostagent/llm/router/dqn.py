"""The DQN router (PyTorch, CPU): network, double-Q training on the emulator, checkpoints.

As the seed describes: the state is the batch size at each model, the task and an
estimate of the arrival rate; the action is the model size; the Q-network is an MLP with
two hidden layers of 256; double Q-learning with a target network copied every 500
steps, discount 0.99, Adam with learning rate 1e-4, epsilon-greedy exploration. Each
arrival is one step; its reward (the seed's: normalized accuracy if on time, else 0)
is known once the request leaves the emulator, and the next state is the state the next
arrival sees. Training episodes are unpredictable workloads, so the router sees every load.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hostagent.llm.router.emulator import DEFAULT_MODEL, Observation, Run, simulate
from hostagent.llm.router.features import feature_size, features
from hostagent.llm.router.metrics import mean_reward
from hostagent.llm.router.tasks import SIZES
from hostagent.llm.router.workloads import no_delay, unpredictable, wan_delay

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "router.pt"
DELAY_AWARE_CHECKPOINT = CHECKPOINT_DIR / "router_netdelay.pt"


@dataclass
class TrainConfig:
    """Training settings; recorded in the checkpoint and the JSON beside it."""

    episodes: int = 150
    seed: int = 1
    episode_s: float = 120.0  # simulated seconds of unpredictable workload per episode
    delay_aware: bool = False  # the state includes the request's network time
    network_delay: bool = False  # requests spend wan_delay() in the network
    hidden: int = 256
    gamma: float = 0.99
    lr: float = 1e-4
    batch: int = 64
    replay: int = 200_000
    target_every: int = 500  # gradient steps between target-network copies
    train_every: int = 2  # arrivals per gradient step
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_share: float = 0.6  # share of the episodes over which epsilon decays
    gpus: int = 4


def q_network(inputs: int, hidden: int = 256, actions: int = len(SIZES)) -> nn.Sequential:
    """The Q-network: two hidden layers of `hidden` with ReLU, one output per model size."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, actions))


class DQNRouter:
    """A trained router: picks the model size with the highest Q-value (numpy forward)."""

    def __init__(self, net: nn.Sequential, delay_aware: bool = False,
                 name: str = "dqn") -> None:
        self.delay_aware = delay_aware
        self.__name__ = name
        layers = [m for m in net if isinstance(m, nn.Linear)]
        self._weights = [(m.weight.detach().numpy().astype(np.float64).T.copy(),
                          m.bias.detach().numpy().astype(np.float64).copy()) for m in layers]

    def q_values(self, obs: Observation) -> np.ndarray:
        x = np.asarray(features(obs, self.delay_aware))
        for i, (w, b) in enumerate(self._weights):
            x = x @ w + b
            if i < len(self._weights) - 1:
                x = np.maximum(x, 0.0)
        return x

    def __call__(self, obs: Observation) -> int:
        return int(np.argmax(self.q_values(obs)))


def save_checkpoint(path: Path, net: nn.Module, config: TrainConfig,
                    info: dict[str, object]) -> None:
    """Write the state_dict and settings to `path`, and the settings to `path`.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "config": asdict(config)}, path)
    meta = {"checkpoint": path.name, "config": asdict(config), **info}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")


def load_router(path: Path | str = DEFAULT_CHECKPOINT) -> DQNRouter:
    """Load a checkpoint written by `save_checkpoint` as a router."""
    path = Path(path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig(**blob["config"])
    net = q_network(feature_size(config.gpus, config.delay_aware), config.hidden)
    net.load_state_dict(blob["state_dict"])
    net.eval()
    name = "dqn+delay" if config.delay_aware else "dqn"
    return DQNRouter(net, config.delay_aware, name)


class _Replay:
    def __init__(self, capacity: int, dim: int) -> None:
        self.s = np.zeros((capacity, dim), np.float32)
        self.s2 = np.zeros((capacity, dim), np.float32)
        self.a = np.zeros(capacity, np.int64)
        self.r = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, s: list[float], a: int, r: float, s2: list[float], done: bool) -> None:
        i = self.pos
        self.s[i], self.a[i], self.r[i], self.s2[i], self.done[i] = s, a, r, s2, done
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, n)
        return (torch.from_numpy(self.s[idx]), torch.from_numpy(self.a[idx]),
                torch.from_numpy(self.r[idx]), torch.from_numpy(self.s2[idx]),
                torch.from_numpy(self.done[idx]))


def _progress(done: int, total: int, started: float, text: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else 0.0
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} episodes "
          f"{elapsed:5.0f}s eta {eta:4.0f}s {text}", end="", file=sys.stderr, flush=True)


def train(config: TrainConfig, progress: bool = True,
          on_episode: Callable[[int, Run], None] | None = None) -> nn.Sequential:
    """Train a Q-network on the emulator with `config`; the trained online network."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    np_rng = np.random.default_rng(config.seed)
    dim = feature_size(config.gpus, config.delay_aware)
    online = q_network(dim, config.hidden)
    target = q_network(dim, config.hidden)
    target.load_state_dict(online.state_dict())
    opt = torch.optim.Adam(online.parameters(), lr=config.lr)
    replay = _Replay(config.replay, dim)
    delay = wan_delay if config.network_delay else no_delay
    steps = 0
    started = time.monotonic()
    decay_episodes = max(1, round(config.episodes * config.eps_decay_share))
    for episode in range(config.episodes):
        eps = max(config.eps_end, config.eps_start
                  - (config.eps_start - config.eps_end) * episode / decay_episodes)
        greedy = DQNRouter(online, config.delay_aware)

        def policy(obs: Observation, eps: float = eps, greedy: DQNRouter = greedy) -> int:
            if rng.random() < eps:
                return rng.randrange(len(SIZES))
            return greedy(obs)

        arrivals, _ = unpredictable(seed=10_000 * config.seed + episode,
                                    duration=config.episode_s, delay=delay)
        run = simulate(arrivals, policy, DEFAULT_MODEL, config.gpus)
        states = [features(o.obs, config.delay_aware) for o in run.outcomes]
        for i, o in enumerate(run.outcomes):
            last = i == len(run.outcomes) - 1
            replay.add(states[i], o.size, run.rewards[i], states[i if last else i + 1], last)
        loss_sum, n_loss = 0.0, 0
        for _ in range(len(run.outcomes) // config.train_every):
            if replay.size < config.batch:
                break
            s, a, r, s2, done = replay.sample(config.batch, np_rng)
            with torch.no_grad():
                best = online(s2).argmax(dim=1, keepdim=True)  # double Q: online picks,
                q_next = target(s2).gather(1, best).squeeze(1)  # the target evaluates
                y = r + config.gamma * (1 - done) * q_next
            q = online(s).gather(1, a.unsqueeze(1)).squeeze(1)
            loss = nn.functional.smooth_l1_loss(q, y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(online.parameters(), 10.0)
            opt.step()
            steps += 1
            loss_sum += loss.item()
            n_loss += 1
            if steps % config.target_every == 0:
                target.load_state_dict(online.state_dict())
        if on_episode is not None:
            on_episode(episode, run)
        if progress:
            _progress(episode + 1, config.episodes, started,
                      f"eps {eps:.2f} reward {mean_reward(run.rewards):.3f} "
                      f"loss {loss_sum / max(n_loss, 1):.3f} steps {steps}")
    if progress:
        print(file=sys.stderr)
    online.eval()
    return online
