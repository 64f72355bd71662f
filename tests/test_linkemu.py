"""Link emulation: the LinkModel's decisions, the spec syntax, the bridge's command line,
and (as root) rate, delay and loss measured through the userspace emulator.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netlab import linkemu, netns_link, veth
from netlab.linkemu import (
    LinkModel,
    LinkParams,
    format_spec,
    netem_args,
    netem_limit,
    parse_spec,
)
from netlab.netns_link import EmulatedLink, in_netns, netns_exists

REPO = Path(__file__).resolve().parent.parent

# --- LinkModel ----------------------------------------------------------------------------------


def test_serialisation_delay_is_exact_at_the_rate() -> None:
    model = LinkModel(LinkParams(rate_bps=8000))  # 1000 bytes take 1 s
    assert model.offer(0.0, 1000) == pytest.approx(1.0)
    assert model.offer(0.0, 1000) == pytest.approx(2.0)  # waits behind the first
    assert model.offer(0.5, 500) == pytest.approx(2.5)
    assert model.offer(10.0, 100) == pytest.approx(10.1)  # idle link: starts at once


def test_delay_is_added_after_serialisation() -> None:
    model = LinkModel(LinkParams(rate_bps=1_000_000, delay_s=0.05))
    assert model.offer(1.0, 125) == pytest.approx(1.0 + 0.001 + 0.05)
    assert model.offer(1.0, 125) == pytest.approx(1.0 + 0.002 + 0.05)
    unlimited = LinkModel(LinkParams(delay_s=0.02))
    assert unlimited.offer(3.0, 1500) == pytest.approx(3.02)
    assert unlimited.offer(3.0, 1500) == pytest.approx(3.02)


def test_drop_tail_at_queue_size() -> None:
    model = LinkModel(LinkParams(rate_bps=8000, queue_packets=3))
    decisions = [model.offer(0.0, 1000) for _ in range(5)]
    assert decisions[:3] == pytest.approx([1.0, 2.0, 3.0])
    assert decisions[3:] == [None, None]
    assert model.stats.dropped_queue == 2 and model.stats.accepted == 3
    assert model.queued(1.0) == 2  # the first finished at t=1: one place is free again
    assert model.offer(1.0, 1000) == pytest.approx(4.0)
    assert model.offer(1.0, 1000) is None


def test_without_rate_nothing_queues() -> None:
    model = LinkModel(LinkParams(queue_packets=1))
    assert all(model.offer(0.0, 1500) == 0.0 for _ in range(100))


@pytest.mark.parametrize("loss", [0.01, 0.015, 0.1, 0.5])
def test_loss_ratio_over_100k_decisions(loss: float) -> None:
    model = LinkModel(LinkParams(loss=loss, seed=7))
    n = 100_000
    dropped = sum(model.offer(i * 1e-4, 100) is None for i in range(n))
    assert dropped == model.stats.dropped_loss
    assert abs(dropped / n - loss) <= 0.05 * loss


def test_seed_makes_the_decisions_reproducible() -> None:
    params = LinkParams(loss=0.3, jitter_s=0.01, delay_s=0.02, seed=42)
    runs = []
    for _ in range(2):
        model = LinkModel(params)
        runs.append([model.offer(i * 1e-3, 100) for i in range(1000)])
    assert runs[0] == runs[1]
    assert 200 < runs[0].count(None) < 400
    other = LinkModel(LinkParams(loss=0.3, jitter_s=0.01, delay_s=0.02, seed=43))
    assert [other.offer(i * 1e-3, 100) for i in range(1000)] != runs[0]


@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_jitter_never_reorders(dist: str) -> None:
    model = LinkModel(LinkParams(delay_s=0.01, jitter_s=0.02, jitter_dist=dist, seed=3))
    departures = [model.offer(i * 1e-3, 100) for i in range(20_000)]
    assert all(d is not None and d >= i * 1e-3 for i, d in enumerate(departures))
    assert all(a <= b for a, b in zip(departures, departures[1:], strict=False))  # type: ignore
    spread = {round(d - i * 1e-3, 6) for i, d in enumerate(departures)}  # type: ignore[operator]
    assert len(spread) > 1000  # and the jitter does spread the delays


def test_jitter_uniform_bounds_and_clip_at_zero() -> None:
    model = LinkModel(LinkParams(delay_s=0.01, jitter_s=0.05, seed=5))
    # packets 1 s apart never wait for each other: each delay is its own draw, clipped at 0
    delays = [model.offer(float(i), 100) - i for i in range(5000)]  # type: ignore[operator]
    assert min(delays) == 0.0
    assert max(delays) <= 0.06 + 1e-9
    assert sum(d == 0.0 for d in delays) / len(delays) == pytest.approx(0.4, abs=0.03)


@pytest.mark.parametrize("kwargs, words", [
    ({"rate_bps": 0}, "rate_bps"),
    ({"rate_bps": -5}, "rate_bps"),
    ({"rate_bps": 5.5}, "rate_bps"),
    ({"delay_s": -0.001}, "delay_s"),
    ({"delay_s": math.inf}, "delay_s"),
    ({"jitter_s": -1}, "jitter_s"),
    ({"loss": 1.01}, "loss"),
    ({"loss": -0.1}, "loss"),
    ({"loss": math.nan}, "loss"),
    ({"queue_packets": 0}, "queue_packets"),
    ({"queue_packets": True}, "queue_packets"),
    ({"seed": 1.5}, "seed"),
    ({"jitter_dist": "pareto"}, "jitter_dist"),
])
def test_bad_params_raise_value_error(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        LinkParams(**kwargs)


# --- spec syntax, netem arguments ---------------------------------------------------------------


def test_parse_spec() -> None:
    assert parse_spec("rate=5mbit,delay=50ms,loss=1%,jitter=0ms,seed=1") == LinkParams(
        rate_bps=5_000_000, delay_s=0.05, loss=0.01, jitter_s=0.0, seed=1)
    assert parse_spec(" rate=1.5Mbit , delay=250us, loss=0.5%, jitter=2ms, dist=normal,"
                      " queue=50 ") == LinkParams(rate_bps=1_500_000, delay_s=0.00025,
                                                  loss=0.005, jitter_s=0.002,
                                                  jitter_dist="normal", queue_packets=50)
    assert parse_spec("") == LinkParams()
    assert parse_spec("rate=none,delay=0") == LinkParams()
    assert parse_spec("rate=100kbit").rate_bps == 100_000
    assert parse_spec("rate=1gbit,delay=1s").delay_s == 1.0


@pytest.mark.parametrize("spec, message", [
    ("rate=fast", "rate: 'fast' is not a number"),
    ("rate=5mbps", "bytes/s"),
    ("rate=5mb", "unit 'mb'"),
    ("rate=0.5bit", "whole number"),
    ("delay=50", "unit ''"),
    ("delay=-5ms", "not a number"),
    ("loss=1", "percentage"),
    ("loss=101%", "probability"),
    ("queue=ten", "not an integer"),
    ("queue=0", "queue_packets"),
    ("seed=x", "not an integer"),
    ("dist=pareto", "jitter_dist"),
    ("colour=blue", "unknown key 'colour'"),
    ("rate", "not key=value"),
    ("delay=", "not key=value"),
    ("delay=1ms,delay=2ms", "given twice"),
])
def test_bad_spec_is_a_clear_value_error(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_spec(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("params", [
    LinkParams(),
    LinkParams(rate_bps=5_000_000, delay_s=0.05, loss=0.01, seed=1),
    LinkParams(rate_bps=123_456_789, delay_s=0.0123, loss=0.015, jitter_s=0.001,
               jitter_dist="normal", queue_packets=77, seed=0),
])
def test_format_spec_round_trips(params: LinkParams) -> None:
    again = parse_spec(format_spec(params))
    assert again.loss == pytest.approx(params.loss, rel=1e-12)
    assert again == LinkParams(**{**params.__dict__, "loss": again.loss})


def test_netem_args() -> None:
    params = LinkParams(rate_bps=5_000_000, delay_s=0.05, loss=0.01, jitter_s=0.002,
                        jitter_dist="normal", queue_packets=100)
    assert netem_args(params) == ["delay", "50000us", "2000us", "distribution", "normal",
                                  "loss", "random", "1%", "rate", "5000000bit",
                                  "limit", str(netem_limit(params))]
    # the limit also has room for the minimum-size frames that are in flight in the delay
    assert netem_limit(params) == 100 + math.ceil((0.05 + 3 * 0.002) * 5e6 / (8 * 64))
    assert netem_args(LinkParams(queue_packets=10)) == ["delay", "0us", "limit", "10"]


# --- the bridge's command line (no root needed: specs are checked before any socket) ------------


def _bridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netlab.linkemu_bridge", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_bridge_help() -> None:
    out = _bridge("--help")
    assert out.returncode == 0
    assert out.stdout.startswith("usage: linkemu_bridge")
    for word in ("--a-to-b", "--b-to-a", "rate=5mbit", "loss=1%", "SIGTERM"):
        assert word in out.stdout


@pytest.mark.parametrize("flag, spec", [("--a-to-b", "rate=5mbps"), ("--b-to-a", "loss=2")])
def test_bridge_bad_spec_is_one_line_exit_2(flag: str, spec: str) -> None:
    out = _bridge("--a", "x0", "--b", "x1", flag, spec)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"linkemu_bridge: error: {flag}: ")


def test_emulated_link_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="one subnet"):
        EmulatedLink("a", "10.251.0.1/30", "b", "10.251.1.2/30")
    with pytest.raises(ValueError, match="one subnet"):
        EmulatedLink("a", "10.251.0.1", "b", "10.251.0.2")
    with pytest.raises(ValueError, match="prefer"):
        EmulatedLink("a", "10.251.0.1/30", "b", "10.251.0.2/30", prefer="tc")
    with pytest.raises(ValueError, match="different namespaces"):
        EmulatedLink("a", "10.251.0.1/30", "a", "10.251.0.2/30")
    with pytest.raises(ValueError, match="interface name"):
        EmulatedLink("a", "10.251.0.1/30", "b", "10.251.0.2/30", ifname_a="x" * 16)


def test_emulated_link_netem_mode_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The netem path cannot run on a kernel without netem: check the commands it gives."""
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        out = '[{"address": "02:00:00:00:00:01"}]' if "-j" in argv else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(netns_link.subprocess, "run", fake_run)
    monkeypatch.setattr(netns_link, "netem_unavailable_reason", lambda: None)
    monkeypatch.setattr(netns_link, "netns_exists", lambda _ns: True)
    monkeypatch.setattr(netns_link, "_disable_ipv6", lambda _ns, _conf: None)
    monkeypatch.setattr(veth.shutil, "which", lambda name: f"/usr/sbin/{name}")
    a_to_b = LinkParams(rate_bps=5_000_000, delay_s=0.05, loss=0.01)
    b_to_a = LinkParams(delay_s=0.02)
    with EmulatedLink("h1", "10.251.0.1/30", "h2", "10.251.0.2/30", a_to_b, b_to_a,
                      static_arp=True, ifname_a="x1", ifname_b="x2") as link:
        assert link.mode == "netem" and link.bridge is None
    assert ["ip", "link", "add", "x1", "netns", "h1", "type", "veth",
            "peer", "name", "x2", "netns", "h2"] in calls
    assert ["tc", "-n", "h1", "qdisc", "add", "dev", "x1", "root", "netem",
            *netem_args(a_to_b)] in calls
    assert ["tc", "-n", "h2", "qdisc", "add", "dev", "x2", "root", "netem",
            *netem_args(b_to_a)] in calls
    assert ["ip", "-n", "h1", "addr", "add", "10.251.0.1/30", "dev", "x1"] in calls
    assert ["ip", "-n", "h1", "neigh", "replace", "10.251.0.2", "lladdr", "02:00:00:00:00:01",
            "dev", "x1", "nud", "permanent"] in calls
    assert calls[-1] == ["ip", "-n", "h1", "link", "del", "dev", "x1"]  # removed on exit
    assert not any(c[:3] == ["ip", "netns", "add"] or c[:3] == ["ip", "netns", "delete"]
                   for c in calls)  # the namespaces existed: neither made nor removed


# --- as root: namespaces, the emulator, measurements --------------------------------------------


def _left_behind(*names: str) -> list[str]:
    """Which of `names` still exist as namespaces (others' namespaces may come and go)."""
    return [name for name in names if netns_exists(name)]


@pytest.mark.root
def test_netem_probe_leaves_nothing_behind() -> None:
    linkemu.netem_unavailable_reason.cache_clear()
    assert isinstance(linkemu.netem_available(), bool)
    assert not _left_behind(f"mpnp{os.getpid()}")


@pytest.mark.root
def test_emulated_link_cleans_up_after_an_exception() -> None:
    tag = os.getpid() % 100000
    ns_a, ns_b = f"mplc{tag}a", f"mplc{tag}b"
    link = EmulatedLink(ns_a, "10.251.8.1/30", ns_b, "10.251.8.2/30",
                        LinkParams(delay_s=0.001), LinkParams(delay_s=0.001), prefer="userspace")
    with pytest.raises(KeyError), link:
        assert link.mode == "userspace" and link.bridge is not None
        pid = link.bridge.pid
        assert netns_exists(ns_a) and netns_exists(ns_b) and netns_exists(link.emu_ns)
        raise KeyError("boom")
    assert not _left_behind(ns_a, ns_b, link.emu_ns)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "a->b received=" in link.bridge_log


# Measurement: 5 Mbit/s, 50 ms one way, 1% loss, a seeded emulator, each within 10%.

RATE_BPS = 5_000_000
DELAY_S = 0.050
LOSS = 0.01
TOLERANCE = 0.10
UDP_OVERHEAD = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers: rate counts whole frames
PROBE = struct.Struct("!IQ")  # sequence number, send time (CLOCK_REALTIME, ns)
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
#: loss: 1% of 80,000 is 800 +- 28 (binomial sigma), so 10% (80) is 2.8 sigma for any seed
LOSS_PACKETS = 80_000
LOSS_PPS = 7_000  # 54-byte frames: 3 Mbit/s, 60% of the link
DELAY_PROBES = 200
RATE_PAYLOAD = 1400
RATE_SEND_S = 3.0


@dataclass
class Received:
    """What a receiver thread saw: (sequence, send ns, kernel receive ns, bytes) per datagram."""

    datagrams: list[tuple[int, int, int, int]] = field(default_factory=list)


def _receiver(sock: socket.socket, out: Received, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, ancdata, _flags, _addr = sock.recvmsg(2048, 64)
        except TimeoutError:
            continue
        rx_ns = time.time_ns()
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("@qq", cdata)
                rx_ns = sec * 10**9 + nsec
        seq, tx_ns = PROBE.unpack_from(data)
        out.datagrams.append((seq, tx_ns, rx_ns, len(data)))


def _phase(rx: socket.socket, send: Callable[[], object], quiet_s: float,
           limit_s: float) -> Received:
    """Run `send()` while a thread receives on `rx`; stop after `quiet_s` without a datagram."""
    out, stop = Received(), threading.Event()
    thread = threading.Thread(target=_receiver, args=(rx, out, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + limit_s
    try:
        send()
        last = (-1, time.monotonic())
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if len(out.datagrams) != last[0]:
                last = (len(out.datagrams), time.monotonic())
            elif time.monotonic() - last[1] >= quiet_s:
                break
    finally:
        stop.set()
        thread.join(timeout=5)
    return out


def _paced(tx: socket.socket, dest: tuple[str, int], count: int, pps: float, size: int,
           limit_s: float) -> int:
    """Send `count` datagrams of `size` bytes at `pps`, at most 1 ms of them at once.

    After a stall (a busy host) it does not catch up with a burst, which the link's
    queue would have to absorb: the schedule slides instead. Returns how many it sent.
    """
    pad = b"\0" * (size - PROBE.size)
    start = time.monotonic()
    deadline = start + limit_s
    sent = 0
    while sent < count and time.monotonic() < deadline:
        now = time.monotonic()
        due = min(count, int((now - start) * pps) + 1)
        if due - sent > pps * 0.02:  # more than 20 ms behind: slide the schedule
            start = now - sent / pps
            due = sent + 1
        while sent < due:
            tx.sendto(PROBE.pack(sent, time.time_ns()) + pad, dest)
            sent += 1
        time.sleep(0.001)
    return sent


def _udp(ns: str, addr: str, port: int = 0) -> socket.socket:
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    return sock


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_userspace_emulator_rate_delay_loss_within_10_percent() -> None:
    tag = os.getpid() % 100000
    ns_a, ns_b = f"mplt{tag}a", f"mplt{tag}b"
    addr_a, addr_b = "10.251.7.1", "10.251.7.2"
    a_to_b = LinkParams(rate_bps=RATE_BPS, delay_s=DELAY_S, loss=LOSS, seed=1)
    b_to_a = LinkParams(rate_bps=RATE_BPS, delay_s=DELAY_S, seed=2)
    sockets: list[socket.socket] = []
    with EmulatedLink(ns_a, f"{addr_a}/24", ns_b, f"{addr_b}/24", a_to_b, b_to_a,
                      prefer="userspace", static_arp=True,
                      bridge_priority=os.environ.get("MP_TEST_PRIO", "realtime")) as link:
        tx = _udp(ns_a, addr_a)
        sockets.append(tx)
        rx_ports = {}
        for phase in ("delay", "loss", "rate"):
            rx = _udp(ns_b, addr_b)
            sockets.append(rx)
            rx_ports[phase] = rx
        try:
            # one-way delay: low-rate probes; both ends share this host's clock
            dest = (addr_b, rx_ports["delay"].getsockname()[1])
            got = _phase(rx_ports["delay"],
                         lambda: _paced(tx, dest, DELAY_PROBES, 100, PROBE.size, 10), 1.0, 20)
            delays = [(rx_ns - tx_ns) / 1e9 for _, tx_ns, rx_ns, _ in got.datagrams]
            # loss: many small datagrams well under the link's rate
            dest = (addr_b, rx_ports["loss"].getsockname()[1])
            sent_loss: list[int] = []
            got_loss = _phase(rx_ports["loss"], lambda: sent_loss.append(_paced(
                tx, dest, LOSS_PACKETS, LOSS_PPS, PROBE.size, 25)), 1.0, 35)
            # rate: twice the link's rate for a while; the queue stays full while it drains
            dest = (addr_b, rx_ports["rate"].getsockname()[1])
            pps = 2 * RATE_BPS / ((RATE_PAYLOAD + UDP_OVERHEAD) * 8)
            got_rate = _phase(rx_ports["rate"], lambda: _paced(
                tx, dest, int(pps * RATE_SEND_S), pps, RATE_PAYLOAD, 10), 1.0, 20)
        finally:
            for sock in sockets:
                sock.close()
    assert not _left_behind(ns_a, ns_b, link.emu_ns)
    report = link.bridge_log

    assert len(delays) >= DELAY_PROBES * 0.9, report
    delay = _median(delays)
    received = len({seq for seq, *_ in got_loss.datagrams})
    loss = 1 - received / sent_loss[0]
    times = [rx_ns for *_, rx_ns, _ in got_rate.datagrams]
    frame_bits = [(n + UDP_OVERHEAD) * 8 for *_, n in got_rate.datagrams]
    rate = sum(frame_bits[1:]) / ((times[-1] - times[0]) / 1e9)
    summary = (f"measured: rate {rate / 1e6:.3f} Mbit/s over {len(times)} frames, "
               f"one-way delay median {delay * 1e3:.2f} ms (min {min(delays) * 1e3:.2f}, "
               f"max {max(delays) * 1e3:.2f}), loss {loss:.4%} of {sent_loss[0]}; "
               f"emulator: {report}")
    print(summary)
    assert sent_loss[0] >= LOSS_PACKETS * 0.75, summary
    assert abs(rate - RATE_BPS) <= TOLERANCE * RATE_BPS, summary
    assert abs(delay - DELAY_S) <= TOLERANCE * DELAY_S, summary
    assert abs(loss - LOSS) <= TOLERANCE * LOSS, summary


def test_describe_names_only_what_is_set() -> None:
    assert LinkParams().describe() == "no impairment"
    assert parse_spec("rate=5mbit,delay=50ms,loss=1.5%").describe() == \
        "5 Mbit/s, 50 ms, 1.5% loss"
    assert "+-2 ms normal jitter" in parse_spec("delay=10ms,jitter=2ms,dist=normal").describe()
