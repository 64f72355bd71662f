"""Link emulation logic: rate, one-way delay, random loss and jitter for one direction.

The seed experiments run over an impaired link (5 Mbit/s, 50 ms, 1.5% loss).
The kernel's netem does that where it exists; where it does not (this project's
development machines have no `sch_netem`), `netlab.linkemu_bridge` does it
in userspace with the `LinkModel` below. Both are configured from one
`LinkParams`, so an experiment states its link once and runs either way.

Everything here is sans-I/O (pure decisions over given times and lengths) and is
unit-tested without root, except `netem_available()`, which probes the kernel.

Semantics of `LinkModel`, per packet, in this order:

1. loss: dropped with probability `loss` (Bernoulli draw from a seeded
   `random.Random`), before it takes a place in the queue, as netem does;
2. queue: a FIFO in front of a serialiser at `rate_bps`; a packet that finds
   `queue_packets` packets waiting or being serialised is dropped (drop-tail);
   otherwise it finishes serialisation at `max(now, previous finish) + len*8/rate`;
3. delay: the serialised packet then takes `delay_s` (plus jitter, clipped at 0)
   to arrive, but never before the packet in front of it: no reordering, so
   jitter never reorders a flow (netem reorders under jitter unless it has a rate).

Lengths are frame lengths at layer 2 (Ethernet header included, no preamble or
FCS), which is what netem's `rate` counts on a veth.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

JITTER_DISTRIBUTIONS = ("uniform", "normal")

#: shortest frame netem's limit is sized for when packets wait out their delay (see netem_limit)
MIN_FRAME_BYTES = 64
#: packet rate assumed for sizing netem's delay line when the link has no rate limit
UNLIMITED_PPS = 1_000_000


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class LinkParams:
    """The impairments of one direction of a link; validated when made.

    rate_bps: serialisation rate in bits per second, None for no rate limit.
    delay_s: one-way delay in seconds, added after serialisation.
    loss: probability in [0, 1] that a packet is dropped at random.
    jitter_s: spread of the delay in seconds (half-width for uniform, sigma for normal).
    jitter_dist: "uniform" (netem's default) or "normal".
    queue_packets: drop-tail limit of the serialisation queue, in packets.
    seed: seed of the loss and jitter draws, None for an unpredictable sequence.
    """

    rate_bps: int | None = None
    delay_s: float = 0.0
    loss: float = 0.0
    jitter_s: float = 0.0
    queue_packets: int = 1000
    seed: int | None = None
    jitter_dist: str = "uniform"

    def __post_init__(self) -> None:
        if self.rate_bps is not None and (not _is_int(self.rate_bps) or self.rate_bps <= 0):
            raise ValueError(f"rate_bps must be a positive integer (bits/s) or None, "
                             f"got {self.rate_bps!r}")
        for name in ("delay_s", "jitter_s"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if not _is_real(self.loss) or not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be a probability between 0 and 1, got {self.loss!r}")
        if not _is_int(self.queue_packets) or self.queue_packets < 1:
            raise ValueError(f"queue_packets must be an integer >= 1, got {self.queue_packets!r}")
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if self.jitter_dist not in JITTER_DISTRIBUTIONS:
            raise ValueError(f"jitter_dist must be one of {', '.join(JITTER_DISTRIBUTIONS)}, "
                             f"got {self.jitter_dist!r}")

    def describe(self) -> str:
        """The impairments that are set, for people: e.g. "5 Mbit/s, 50 ms, 1% loss"."""
        parts = []
        if self.rate_bps is not None:
            parts.append(f"{self.rate_bps / 1e6:g} Mbit/s")
        if self.delay_s:
            parts.append(f"{self.delay_s * 1000:g} ms")
        if self.jitter_s:
            parts.append(f"+-{self.jitter_s * 1000:g} ms {self.jitter_dist} jitter")
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss")
        return ", ".join(parts) or "no impairment"


@dataclass
class LinkStats:
    """Counters of one direction: packets offered, accepted and dropped (and why)."""

    received: int = 0
    accepted: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0


@dataclass
class LinkModel:
    """Decides, for each packet offered to one direction of a link, drop or departure time.

    Sans-I/O: the caller gives the arrival time (any monotonic clock, in seconds,
    non-decreasing from call to call) and the frame length, and gets back the
    time at which the frame leaves the link, or None when the link drops it.
    """

    params: LinkParams
    stats: LinkStats = field(default_factory=LinkStats)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.params.seed)
        self._serialised: deque[float] = deque()  # finish times of queued packets, FIFO
        self._last_serialised = -math.inf
        self._last_departure = -math.inf

    def queued(self, now: float) -> int:
        """How many packets are waiting for or in the serialiser at time `now`."""
        while self._serialised and self._serialised[0] <= now:
            self._serialised.popleft()
        return len(self._serialised)

    def offer(self, now: float, length: int) -> float | None:
        """Offer a frame of `length` bytes arriving at `now`: its departure time, or None."""
        p = self.params
        self.stats.received += 1
        if p.loss > 0 and self._rng.random() < p.loss:
            self.stats.dropped_loss += 1
            return None
        if p.rate_bps is None:
            serialised = now
        else:
            if self.queued(now) >= p.queue_packets:
                self.stats.dropped_queue += 1
                return None
            serialised = max(now, self._last_serialised) + length * 8 / p.rate_bps
            self._last_serialised = serialised
            self._serialised.append(serialised)
        delay = p.delay_s
        if p.jitter_s > 0:
            if p.jitter_dist == "normal":
                delay += self._rng.gauss(0.0, p.jitter_s)
            else:
                delay += self._rng.uniform(-p.jitter_s, p.jitter_s)
            delay = max(delay, 0.0)
        departure = max(serialised + delay, self._last_departure)
        self._last_departure = departure
        self.stats.accepted += 1
        return departure


# --- the text form of LinkParams: "rate=5mbit,delay=50ms,loss=1%,jitter=0ms,seed=1" -----------

_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
SPEC_KEYS = ("rate", "delay", "loss", "jitter", "dist", "queue", "seed")
SPEC_HELP = (
    "comma-separated key=value list, all keys optional: "
    "rate=5mbit (bit, kbit, mbit, gbit, SI; 'none' = unlimited), "
    "delay=50ms and jitter=5ms (s, ms, us), loss=1% (a percentage), "
    "dist=uniform|normal (jitter distribution), queue=1000 (drop-tail, packets), seed=1"
)


def _split_unit(text: str, units: dict, what: str, example: str) -> float:
    match = re.fullmatch(rf"({_NUMBER})([a-z]*)", text.strip().lower())
    if match is None:
        raise ValueError(f"{what}: {text!r} is not a number with a unit, e.g. {example}")
    number, unit = float(match.group(1)), match.group(3)
    if unit not in units:
        if unit == "" and number == 0:
            return 0.0
        raise ValueError(f"{what}: unit {unit!r} of {text!r} is not one of "
                         f"{', '.join(units)} (e.g. {example})")
    return number * units[unit]


def parse_rate(text: str) -> int | None:
    """Parse a rate such as '5mbit' into bits/s (SI prefixes, as tc); 'none' means unlimited."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    if text.strip().lower().endswith("bps"):
        raise ValueError(f"rate: {text!r}: tc's 'bps' means bytes/s; write bits, e.g. 5mbit")
    bits = _split_unit(text, _RATE_UNITS, "rate", "5mbit")
    if bits < 1 or bits != int(bits):
        raise ValueError(f"rate: {text!r} must be a whole number of bits/s >= 1")
    return int(bits)


def parse_duration(text: str, what: str = "time") -> float:
    """Parse a duration such as '50ms' into seconds (units s, ms, us; bare 0 allowed)."""
    return _split_unit(text, _TIME_UNITS, what, "50ms")


def parse_percent(text: str, what: str = "loss") -> float:
    """Parse a percentage such as '1%' or '0.5%' into a fraction (0.01, 0.005)."""
    match = re.fullmatch(rf"({_NUMBER})%", text.strip())
    if match is None:
        raise ValueError(f"{what}: {text!r} must be a percentage with a % sign, e.g. 1%")
    return float(match.group(1)) / 100


def parse_spec(spec: str) -> LinkParams:
    """Parse a link spec ('rate=5mbit,delay=50ms,loss=1%,seed=1') into LinkParams.

    Raises ValueError with a one-line message naming the bad item. An empty spec
    is a link without impairments.
    """
    values: dict[str, object] = {}
    seen: set[str] = set()
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ValueError(f"{item!r} is not key=value (keys: {', '.join(SPEC_KEYS)})")
        if key not in SPEC_KEYS:
            raise ValueError(f"unknown key {key!r} (keys: {', '.join(SPEC_KEYS)})")
        if key in seen:
            raise ValueError(f"key {key!r} given twice")
        seen.add(key)
        value = value.strip()
        if key == "rate":
            values["rate_bps"] = parse_rate(value)
        elif key in ("delay", "jitter"):
            values[f"{key}_s"] = parse_duration(value, key)
        elif key == "loss":
            values["loss"] = parse_percent(value)
        elif key == "dist":
            values["jitter_dist"] = value.lower()
        else:  # queue, seed
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f"{key}: {value!r} is not an integer") from None
            values["queue_packets" if key == "queue" else "seed"] = number
    return LinkParams(**values)  # type: ignore[arg-type]


def format_spec(params: LinkParams) -> str:
    """The spec string that `parse_spec` turns back into `params` (for the bridge's argv)."""
    parts = [f"rate={params.rate_bps}bit" if params.rate_bps is not None else "rate=none",
             f"delay={params.delay_s!r}s", f"loss={params.loss * 100!r}%",
             f"jitter={params.jitter_s!r}s", f"dist={params.jitter_dist}",
             f"queue={params.queue_packets}"]
    if params.seed is not None:
        parts.append(f"seed={params.seed}")
    return ",".join(parts)


# --- netem ---------------------------------------------------------------------------------------


def netem_limit(params: LinkParams) -> int:
    """netem's `limit` that gives the queue `params.queue_packets` places.

    netem's limit counts every packet it holds, those waiting out their delay as
    well as those waiting to be serialised, whereas `queue_packets` counts only
    the latter (the delay is propagation, which holds no buffer). So the limit
    adds room for the packets in flight: as many minimum-size frames as the
    rate can put into the delay (+ jitter), or UNLIMITED_PPS packets/s without a rate.
    """
    flight_s = params.delay_s + params.jitter_s * (3 if params.jitter_dist == "normal" else 1)
    pps = params.rate_bps / (8 * MIN_FRAME_BYTES) if params.rate_bps else UNLIMITED_PPS
    return min(params.queue_packets + math.ceil(flight_s * pps), 2**31 - 1)


def netem_args(params: LinkParams) -> list[str]:
    """The arguments after `tc qdisc add dev IF root netem` for one direction.

    netem's `seed` option needs a newer iproute2 than Debian 12's, so a seeded
    LinkParams gives the same impairments with an unseeded sequence under netem.
    """
    args = ["delay", f"{round(params.delay_s * 1e6)}us"]
    if params.jitter_s > 0:
        args.append(f"{round(params.jitter_s * 1e6)}us")
        if params.jitter_dist == "normal":
            args += ["distribution", "normal"]
    if params.loss > 0:
        args += ["loss", "random", f"{params.loss * 100:.7g}%"]
    if params.rate_bps is not None:
        args += ["rate", f"{params.rate_bps}bit"]
    args += ["limit", str(netem_limit(params))]
    return args


@functools.cache
def netem_unavailable_reason() -> str | None:
    """Why `tc ... netem` cannot be used here, or None when it works (probed once, cached).

    The probe adds a veth pair in a throw-away namespace, tries to attach netem
    to it, and deletes the namespace (and with it the veths) whatever happens.
    """
    if os.geteuid() != 0:
        return "needs root to probe netem"
    for program in ("ip", "tc"):
        if shutil.which(program) is None:
            return f"the `{program}` command (Debian package iproute2) is missing"
    ns = f"mpnp{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    try:
        veth = subprocess.run(["ip", "-n", ns, "link", "add", "np0", "type", "veth",
                               "peer", "name", "np1"], capture_output=True, text=True)
        if veth.returncode != 0:
            return f"cannot make a veth pair: {veth.stderr.strip()}"
        qdisc = subprocess.run(["tc", "-n", ns, "qdisc", "add", "dev", "np0", "root", "netem",
                                "delay", "1ms", "rate", "1mbit"], capture_output=True, text=True)
        if qdisc.returncode != 0:
            return f"tc netem failed: {qdisc.stderr.strip() or 'exit ' + str(qdisc.returncode)}"
        return None
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def netem_available() -> bool:
    """Whether the kernel's netem qdisc works here (probed once per process)."""
    reason = netem_unavailable_reason()
    if reason is not None:
        log.debug("netem unavailable: %s", reason)
    return reason is None
