"""A discrete-event emulator of the model-serving back-end (no torch, no sleeping).

Four GPUs each hold one replica of the small, medium and large model. A replica serves
its requests by continuous batching, emulated as a fluid: while `b` requests are active,
every one of them gains one token per `LatencyModel.step_s(size, b)` seconds, so a request
that joins slows down every request already on that replica. A request is done after
`LatencyModel.tokens` tokens. Each request goes to the replica of the chosen size with the
smallest batch (ties: the lowest GPU index).

Time is simulated: `simulate()` runs a whole workload in milliseconds, with the router
asked once per arrival. `Cluster` is also driven in real time by the serving back-end
(`hostagent.llm.router.serving`), which advances it to the wall clock at every event.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from hostagent.llm.router.tasks import PARAMS_B, SIZES, reward

INF = math.inf


@dataclass(frozen=True)
class LatencyModel:
    """Per-token step time of a replica as a function of model size and batch size.

    step_s(size, b) = (overhead_ms + P * (weight_ms_per_b + batch_ms_per_b * b)) / 1000,
    with P the model's parameters in billions: a fixed per-step overhead, a term for
    streaming the weights once per step (shared by the batch) and a term per request in
    the batch (its compute and KV-cache reads), both linear in model size. The three
    constants and `tokens` are calibrated assumptions (see the README), chosen so that the
    large model alone misses the seed's 40 ms/token deadline above about 2 requests/s.
    """

    overhead_ms: float = 2.0
    weight_ms_per_b: float = 1.0
    batch_ms_per_b: float = 4.0
    tokens: int = 32
    deadline_ms_per_token: float = 40.0
    #: Requests a replica serves at once; more wait FCFS. 0: the largest batch whose step
    #: still meets the per-token deadline (SLO-aware batching; 1 for the large model).
    max_batch: int = 0

    def step_s(self, size: int, batch: int) -> float:
        """Seconds per token step of a replica of `size` with `batch` active requests."""
        if batch < 1:
            raise ValueError("a step needs at least one request")
        return (self.overhead_ms
                + PARAMS_B[size] * (self.weight_ms_per_b + self.batch_ms_per_b * batch)) / 1000

    def service_s(self, size: int, batch: int) -> float:
        """Service time of a request that keeps `batch` requests for its whole life."""
        return self.tokens * self.step_s(size, batch)

    def batch_limit(self, size: int) -> int:
        """How many requests a replica of `size` serves at once (see `max_batch`)."""
        if self.max_batch:
            return self.max_batch
        limit = 1
        while self.step_s(size, limit + 1) * 1000 <= self.deadline_ms_per_token:
            limit += 1
        return limit

    @property
    def budget_s(self) -> float:
        """The deadline of a request: 40 ms per token, from its arrival at the back-end."""
        return self.tokens * self.deadline_ms_per_token / 1000


DEFAULT_MODEL = LatencyModel()


class Replica:
    """One model replica: continuous batching of up to `batch_limit` requests (a fluid),
    a FCFS queue behind it, and requests given up at their deadline.

    A request whose deadline passes, waiting or running, can earn nothing more: it leaves
    (reported as not completed), which frees its share of the replica for the others.
    """

    def __init__(self, gpu: int, size: int, model: LatencyModel = DEFAULT_MODEL) -> None:
        self.gpu, self.size, self.model = gpu, size, model
        self.clock = 0.0
        self.progress = 0.0  # tokens every running request has gained since the start
        self._running: dict[object, float] = {}  # key -> finish progress
        self._finish: list[tuple[float, int, object]] = []  # lazy heap over _running
        self._waiting: deque[object] = deque()  # lazy: keys no longer present are skipped
        self._deadline: dict[object, float] = {}  # every present request (running or waiting)
        self._expiry: list[tuple[float, int, object]] = []  # lazy heap over _deadline
        self._seq = 0
        self.limit = model.batch_limit(size)

    @property
    def batch(self) -> int:
        """Requests being served now."""
        return len(self._running)

    @property
    def load(self) -> int:
        """Requests present: running plus waiting (what routing balances and the router sees)."""
        return len(self._deadline)

    def _next_finish(self) -> tuple[float, object]:
        while self._finish and self._finish[0][2] not in self._running:
            heapq.heappop(self._finish)
        if not self._finish:
            return INF, None
        step = self.model.step_s(self.size, self.batch)
        finish, _, key = self._finish[0]
        return self.clock + max(0.0, finish - self.progress) * step, key

    def _next_expiry(self) -> tuple[float, object]:
        while self._expiry and self._expiry[0][2] not in self._deadline:
            heapq.heappop(self._expiry)
        return (self._expiry[0][0], self._expiry[0][2]) if self._expiry else (INF, None)

    def next_event(self) -> float:
        """Time of the next completion or expiry if nothing joins, or inf when idle."""
        return min(self._next_finish()[0], self._next_expiry()[0])

    def _run_to(self, t: float) -> None:
        if self._running and t > self.clock:
            self.progress += (t - self.clock) / self.model.step_s(self.size, self.batch)
        self.clock = max(self.clock, t)

    def _fill(self) -> list[tuple[float, object, bool]]:
        """Start waiting requests while there is room; give up (now) on those that could
        no longer finish in time even at the batch they would join."""
        dropped: list[tuple[float, object, bool]] = []
        while self._waiting and len(self._running) < self.limit:
            key = self._waiting.popleft()
            if key not in self._deadline:
                continue
            if self.clock + self.model.service_s(self.size, self.batch + 1) \
                    > self._deadline[key] + 1e-9:
                del self._deadline[key]
                dropped.append((self.clock, key, False))
            else:
                self._start(key)
        return dropped

    def _start(self, key: object) -> None:
        self._seq += 1
        finish = self.progress + self.model.tokens
        self._running[key] = finish
        heapq.heappush(self._finish, (finish, self._seq, key))

    def advance(self, t: float) -> list[tuple[float, object, bool]]:
        """Run to time `t`; (time, key, completed) of every request that left on the way:
        completed True when it got all its tokens, False when its deadline passed first."""
        done: list[tuple[float, object, bool]] = []
        while self._deadline:
            t_fin, k_fin = self._next_finish()
            t_exp, k_exp = self._next_expiry()
            if min(t_fin, t_exp) > t:
                break
            if t_fin <= t_exp:
                self._run_to(t_fin)
                self.progress = max(self.progress, self._running.pop(k_fin))
                del self._deadline[k_fin]
                done.append((t_fin, k_fin, True))
            else:
                self._run_to(t_exp)
                self._running.pop(k_exp, None)
                del self._deadline[k_exp]
                done.append((t_exp, k_exp, False))
            done += self._fill()
        if t != INF:
            self._run_to(t)
        return done

    def admit(self, key: object, t: float, deadline: float = INF) -> None:
        """Add a request at time `t` that is given up at `deadline`."""
        if t < self.clock - 1e-9:
            raise ValueError(f"admit at {t} before the replica's clock {self.clock}")
        self._run_to(t)
        self._seq += 1
        self._deadline[key] = deadline
        heapq.heappush(self._expiry, (deadline, self._seq, key))
        if len(self._running) < self.limit:
            self._start(key)
        else:
            self._waiting.append(key)


class Cluster:
    """`gpus` GPUs, each with one replica of every size; routes to the least-loaded one."""

    def __init__(self, model: LatencyModel = DEFAULT_MODEL, gpus: int = 4) -> None:
        self.model = model
        self.replicas: list[list[Replica]] = [
            [Replica(g, s, model) for g in range(gpus)] for s in range(len(SIZES))]

    def batches(self) -> tuple[tuple[int, ...], ...]:
        """Load (running plus waiting) of every replica, per model size, in GPU order."""
        return tuple(tuple(r.load for r in row) for row in self.replicas)

    def pick(self, size: int) -> Replica:
        """The replica of `size` with the smallest batch (load; lowest GPU index on ties)."""
        return min(self.replicas[size], key=lambda r: (r.load, r.gpu))

    def advance(self, t: float) -> list[tuple[float, object, bool]]:
        """Run every replica to `t`; (time, key, completed) of departures, in time order."""
        done = [c for row in self.replicas for r in row for c in r.advance(t)]
        done.sort(key=lambda c: c[0])
        return done

    def admit(self, key: object, size: int, t: float, deadline: float = INF) -> Replica:
        """Add a request to the least-loaded replica of `size` at `t`; that replica."""
        replica = self.pick(size)
        replica.admit(key, t, deadline)
        return replica

    def next_event(self) -> float:
        """Time of the next departure anywhere if nothing joins (inf when idle)."""
        return min(r.next_event() for row in self.replicas for r in row)


@dataclass(frozen=True)
class Arrival:
    """A request of a router workload.

    `net_delay` is the time the request spends in the network (both ways) outside the
    back-end; it eats into the same deadline, as in the end-to-end experiment.
    """

    index: int
    time: float
    task: int
    net_delay: float = 0.0


class RateEstimator:
    """Arrival-rate estimate: an exponentially decaying count of arrivals (time constant tau).

    The router cannot know the workload's rate; it sees this estimate, as in the seed.
    """

    def __init__(self, tau: float = 2.0) -> None:
        self.tau = tau
        self.value = 0.0
        self.last: float | None = None

    def observe(self, t: float) -> float:
        """Count an arrival at `t`; the new estimate in requests/s."""
        if self.last is not None:
            self.value *= math.exp(-(t - self.last) / self.tau)
        self.value += 1 / self.tau
        self.last = t
        return self.value


@dataclass(frozen=True)
class Observation:
    """What the router sees when a request arrives."""

    batches: tuple[tuple[int, ...], ...]  # per size, per GPU
    task: int
    rate: float  # estimated arrivals per second
    net_delay: float = 0.0  # network time of this request (seen only by delay-aware routers)
    budget: float = DEFAULT_MODEL.budget_s


#: A router: chooses a model size (index into SIZES) for an observation.
Policy = Callable[[Observation], int]


@dataclass
class Outcome:
    """What happened to one request."""

    arrival: Arrival
    size: int
    gpu: int
    obs: Observation
    done_at: float = INF  # inf: given up at its deadline, never answered in time

    @property
    def service_s(self) -> float:
        return self.done_at - self.arrival.time

    def met(self, budget: float) -> bool:
        """Whether network time plus service time stayed within the deadline."""
        return self.arrival.net_delay + self.service_s <= budget + 1e-9

    def reward(self, budget: float) -> float:
        return reward(self.arrival.task, self.size, self.met(budget))


@dataclass
class Run:
    """The outcomes of one workload under one router, with the deadline they were held to."""

    outcomes: list[Outcome]
    budget: float
    rewards: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.rewards = [o.reward(self.budget) for o in self.outcomes]


def simulate(arrivals: Sequence[Arrival], policy: Policy,
             model: LatencyModel = DEFAULT_MODEL, gpus: int = 4,
             rate_tau: float = 2.0) -> Run:
    """Serve `arrivals` (in time order) with `policy` choosing the model size of each."""
    cluster = Cluster(model, gpus)
    rates = RateEstimator(rate_tau)
    outcomes: list[Outcome] = []
    for arrival in arrivals:
        for t, key, completed in cluster.advance(arrival.time):
            if completed:
                outcomes[cast(int, key)].done_at = t  # keys are outcome indices
        obs = Observation(cluster.batches(), arrival.task, rates.observe(arrival.time),
                          arrival.net_delay, model.budget_s)
        size = policy(obs)
        deadline = arrival.time + model.budget_s - arrival.net_delay
        replica = cluster.admit(len(outcomes), size, arrival.time, deadline)
        outcomes.append(Outcome(arrival, size, replica.gpu, obs))
    for t, key, completed in cluster.advance(INF):
        if completed:
            outcomes[cast(int, key)].done_at = t  # keys are outcome indices
    return Run(outcomes, model.budget_s)
