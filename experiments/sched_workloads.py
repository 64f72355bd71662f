"""The two workloads of the switch-scheduling experiment, as packet plans (no I/O).

- ``uniform``: the SP-PIFO paper's uniform-rank workload: Poisson packets, each with a rank
  drawn uniformly from 0..100. A rank reaches the switch as the packet's UDP source port
  (`UNIFORM_PORT_BASE` + rank; one `flow_rank` entry per port), so all 101 ranks are kept.
- ``pfabric``: flows with sizes from the web-search distribution and Poisson arrivals at a
  load; each packet's rank is pFabric's, the flow's remaining size in packets (this packet
  included). The switch takes the rank from its `flow_rank` table, keyed here by DSCP, and
  DSCP has 6 bits: the remaining size is quantized into at most 64 levels with log-spaced
  edges (exact for small sizes), the level is the DSCP and the level's lower edge its rank.

`Workload.packets` is the plan the sender follows: when each packet is due, which tag
(socket: DSCP and source port) carries it, its rank and flow. Flow completion times are
computed here too, from send and arrival times, for the measurement and the reference alike.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from schedmodels.stats import percentile

#: The web-search flow-size distribution (DCTCP, Alizadeh et al., SIGCOMM'10, Fig. 4; the
#: "web search" workload of pFabric, SIGCOMM'13, Fig. 4a, and of SP-PIFO's and PACKS's
#: evaluations), as the DCTCP_CDF file of the datacenter/empirical-traffic-gen repository
#: gives it: (flow size in bytes, cumulative probability), read piecewise linearly.
WEB_SEARCH_CDF: tuple[tuple[int, float], ...] = (
    (0, 0.0), (10_000, 0.15), (20_000, 0.2), (30_000, 0.3), (50_000, 0.4), (80_000, 0.53),
    (200_000, 0.6), (1_000_000, 0.7), (2_000_000, 0.8), (5_000_000, 0.9),
    (10_000_000, 0.97), (30_000_000, 1.0))
#: pFabric's and SP-PIFO's small flows: below 100 KB (of the distribution's sizes)
SMALL_FLOW_BYTES = 100_000
UNIFORM_RANKS = tuple(range(101))
UNIFORM_PORT_BASE = 20000
DSCP_LEVELS = 64


@dataclass(frozen=True)
class Tag:
    """How a packet carries its rank to the switch: a DSCP (None: 0, matched as any) and a
    UDP source port (0: any); one sender socket and one `flow_rank` entry per tag."""

    rank: int
    dscp: int | None = None
    src_port: int = 0


@dataclass(frozen=True)
class Planned:
    """One packet of the plan: due time (s from the start), tag index, rank, flow id."""

    time: float
    tag: int
    rank: int
    flow: int = -1


@dataclass(frozen=True)
class FlowPlan:
    """A pFabric flow: when it starts, its size in packets (after scaling) and in bytes
    (as drawn from the distribution), and whether the run cut it short."""

    start: float
    packets: int
    size_bytes: int
    truncated: bool = False

    @property
    def small(self) -> bool:
        return self.size_bytes < SMALL_FLOW_BYTES


@dataclass
class Workload:
    """A plan: the tags to register, the packets in due order, the flows (pFabric)."""

    name: str
    tags: list[Tag]
    packets: list[Planned]
    flows: dict[int, FlowPlan] = field(default_factory=dict)
    params: dict[str, float | int | str] = field(default_factory=dict)


def uniform_workload(seconds: float, load: float, rate_bps: float, wire_bytes: int,
                     seed: int) -> Workload:
    """Poisson packets at `load` x the bottleneck for `seconds`, ranks uniform in 0..100."""
    rng = random.Random(seed)
    tags = [Tag(rank, None, UNIFORM_PORT_BASE + rank) for rank in UNIFORM_RANKS]
    mean_gap = wire_bytes * 8 / rate_bps / load
    packets = []
    t = rng.expovariate(1 / mean_gap)
    while t < seconds:
        i = rng.randrange(len(tags))
        packets.append(Planned(t, i, tags[i].rank))
        t += rng.expovariate(1 / mean_gap)
    return Workload("uniform", tags, packets,
                    params={"ranks": "0..100 uniform", "rank_carrier": "UDP source port"})


def sample_size(rng: random.Random, cdf: Sequence[tuple[int, float]] = WEB_SEARCH_CDF) -> int:
    """One flow size in bytes from a piecewise-linear CDF (inverse transform)."""
    u = rng.random()
    probs = [p for _, p in cdf]
    i = max(1, bisect.bisect_left(probs, u))
    (s0, p0), (s1, p1) = cdf[i - 1], cdf[i]
    return round(s0 + (s1 - s0) * ((u - p0) / (p1 - p0) if p1 > p0 else 1.0))


def log_levels(max_value: int, levels: int = DSCP_LEVELS) -> list[int]:
    """At most `levels` ascending edges from 1 covering 1..`max_value`, log-spaced (so
    exact for small values): value v is in level `level_of(edges, v)`."""
    if max_value < 1 or levels < 1:
        raise ValueError("max_value and levels must be positive")
    if max_value <= levels:
        return list(range(1, max_value + 1))
    best = [1]
    for n in range(2, 64 * levels):
        edges = sorted({max(1, round(max_value ** (i / (n - 1)))) for i in range(n)})
        if len(edges) > levels:
            break
        best = edges
    return best


def level_of(edges: Sequence[int], value: int) -> int:
    """The level of `value`: the last edge not above it (values below 1 are level 0)."""
    return max(0, bisect.bisect_right(edges, value) - 1)


def packets_of(size_bytes: int, scale: int, payload: int) -> int:
    """A flow's packets: its size divided by `scale`, in `payload`-byte packets (>= 1)."""
    return max(1, math.ceil(size_bytes / scale / payload))


def pfabric_workload(seconds: float, load: float, rate_bps: float, wire_bytes: int,
                     payload: int, seed: int, scale: int = 40, access: float = 2.0,
                     levels: int = DSCP_LEVELS) -> Workload:
    """Web-search flows arriving as a Poisson process at `load` x the bottleneck for
    `seconds`. Each size is divided by `scale` (so that a run of seconds holds enough
    flows: at 5 Mbit/s the unscaled mean, 1.6 MB, takes 2.7 s) and sent in `payload`-byte
    packets paced at `access` x the bottleneck rate (the sender's link is faster than the
    bottleneck). Packets due after `seconds` are not sent; their flows are `truncated`."""
    rng = random.Random(seed)
    sizer = random.Random(seed + 7919)
    mean_packets = sum(packets_of(sample_size(sizer), scale, payload)
                       for _ in range(20000)) / 20000
    flow_rate = load * rate_bps / (8 * wire_bytes * mean_packets)
    max_packets = packets_of(WEB_SEARCH_CDF[-1][0], scale, payload)
    edges = log_levels(max_packets, levels)
    tags = [Tag(edge, level, 0) for level, edge in enumerate(edges)]
    gap = wire_bytes * 8 / (access * rate_bps)
    flows: dict[int, FlowPlan] = {}
    packets: list[Planned] = []
    t = rng.expovariate(flow_rate)
    while t < seconds:
        size = sample_size(rng)
        n = packets_of(size, scale, payload)
        fid = len(flows)
        sent = 0
        for j in range(n):
            due = t + j * gap
            if due >= seconds:
                break
            level = level_of(edges, n - j)
            packets.append(Planned(due, level, edges[level], fid))
            sent += 1
        flows[fid] = FlowPlan(t, n, size, truncated=sent < n)
        t += rng.expovariate(flow_rate)
    packets.sort(key=lambda p: p.time)
    return Workload("pfabric", tags, packets, flows,
                    params={"cdf": "web search (DCTCP_CDF)", "size_scale": scale,
                            "access_x_bottleneck": access, "levels": len(edges),
                            "mean_packets_per_flow": round(mean_packets, 2),
                            "flows_per_s": round(flow_rate, 3),
                            "rank_carrier": "DSCP (log-spaced levels of remaining packets)"})



def flow_completion(work: Workload, sent: Sequence[float],
                    done: dict[int, float]) -> dict[int, float]:
    """Per complete flow, its completion time (s): from its first packet's send time
    (`sent[i]`, plan index i) to the last of its packets' arrivals (`done[i]`). A flow
    with a packet lost, or one the run cut short, has none."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    count: dict[int, int] = {}
    for i, p in enumerate(work.packets):
        if p.flow < 0:
            continue
        first[p.flow] = min(first.get(p.flow, math.inf), sent[i])
        if i in done:
            last[p.flow] = max(last.get(p.flow, -math.inf), done[i])
            count[p.flow] = count.get(p.flow, 0) + 1
    return {f: last[f] - first[f] for f, plan in work.flows.items()
            if not plan.truncated and count.get(f, 0) == plan.packets}


def fct_summary(work: Workload, fct: dict[int, float]) -> dict[str, float | int | None]:
    """Small flows' (< 100 KB) mean and p99 completion time in ms, how many of them there
    were and completed; the same mean for the large ones that completed."""
    small = [f for f, plan in work.flows.items() if plan.small and not plan.truncated]
    large = [f for f, plan in work.flows.items() if not plan.small and not plan.truncated]
    small_fct = [1000 * fct[f] for f in small if f in fct]
    large_fct = [1000 * fct[f] for f in large if f in fct]
    return {"small_flows": len(small), "small_completed": len(small_fct),
            "small_mean_ms": sum(small_fct) / len(small_fct) if small_fct else None,
            "small_p99_ms": percentile(small_fct, 99),
            "large_flows": len(large), "large_completed": len(large_fct),
            "large_mean_ms": sum(large_fct) / len(large_fct) if large_fct else None}
