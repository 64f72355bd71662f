"""The switch-scheduling experiment: FIFO, STRICT, SP-PIFO, AIFO and PACKS at a 5 Mbit/s
bottleneck, measured on the built-in target and compared with the pure-Python reference.

Two hosts in namespaces (sender and receiver, per-run names from netlab.names) on the
built-in target, whose port towards the receiver is shaped to 5 Mbit/s, with 8 priority
queues of `--queue-depth` packets (64, BMv2's default). This always uses the built-in
target, whatever MP_TARGET says: the port-level shaper exists only there (BMv2 shapes
each priority queue on its own, which breaks strict priority at a bottleneck).
mp-controller installs the pipeline, the routes, the STRICT ranges ([[strict]]) and one
stream rank per tag (RegisterStream, rank = deadline_ms). Two workloads
(`experiments.sched_workloads`):

- uniform: the SP-PIFO paper's: Poisson packets at `--load` (1.3) x the bottleneck, ranks
  uniform in 0..100, each rank on its own UDP source port;
- pfabric: web-search flows (sizes / `--size-scale`), Poisson arrivals at `--load` (0.8),
  rank = remaining flow size in packets, quantized into 64 log-spaced DSCP levels.

The sender follows a seeded plan of 1000-byte datagrams; the same plan runs with the
switch in each mode (SetSchedMode; AIFO and PACKS with burst_pct k and queue_depth equal
to the switch's depth). Per mode: inversions from the receiver's view
(`receiver_inversions`), drops per rank, admission and full-queue drops (the P4 `drops`
counter, reasons 8 and 9), tail drops in the traffic manager, latency per rank, and for
pfabric the small flows' (< 100 KB) mean and p99 completion time. The reference
(`schedmodels.portsim`), configured as the switch behaves, runs on the sender's log of each
run; the two must agree within 10%. Writes JSON and a PNG, prints tables.

    python -m experiments.switch_scheduling [--workload uniform|pfabric] [--seconds 5] \\
        [--modes fifo,strict,sppifo,aifo,packs] [--load L] [--seed 1] [--queue-depth 64] \\
        [--burst-pct 10] [--size-scale 40] [--out results/switch]

The same module is the sender and the receiver inside the namespaces (`--role`).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from bmv2 import launcher
from clikit import exit_on_signals
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from experiments import switch_scheduling_report as report
from experiments.sched_workloads import (
    Workload,
    fct_summary,
    flow_completion,
    pfabric_workload,
    uniform_workload,
)
from netlab import capabilities, names
from netlab.hosts import SwitchHost
from netlab.nsprocess import NamespaceProcess, ProcessFailed, python_module
from p4src.pipeline import RANK_MAX, RANK_WINDOW, DropReason
from schedmodels.aifo import BURST_PCT
from schedmodels.portsim import (
    Packet,
    RankCounter,
    StrictRange,
    even_strict_ranges,
    simulate,
)
from schedmodels.stats import quartiles

SENDER = SwitchHost(names.netns("ss1"), 1, "10.0.1.10/24", "02:00:00:00:01:0a",
                    "02:aa:00:00:00:01", prefix=names.ifname("ss"))
RECEIVER = SwitchHost(names.netns("ss3"), 3, "10.0.3.10/24", "02:00:00:00:03:0a",
                      "02:aa:00:00:00:03", prefix=names.ifname("ss"))
BOTTLENECK_BPS = 5_000_000
MODES = ("fifo", "strict", "sppifo", "aifo", "packs")
WORKLOADS = ("uniform", "pfabric")
DEFAULT_LOAD = {"uniform": 1.3, "pfabric": 0.8}
PAYLOAD = 1000  # UDP payload bytes
WIRE_OVERHEAD = 14 + 20 + 8  # Ethernet, IPv4, UDP: what the port shaper counts
WIRE = PAYLOAD + WIRE_OVERHEAD
QUEUES, DEPTH = 8, 64  # the built-in target's priority queues and default depth (packets)
PORT = 9000
TOKEN = "mpss-operator"
HEADER = struct.Struct("!IHid")  # plan index, rank, flow, send time (CLOCK_MONOTONIC)
DRAIN = 2.5  # s the receiver listens after the sender's last packet
#: |measured - reference| / reference within this for every mode
AGREEMENT = 0.10


# -- the estimator -----------------------------------------------------------------------------

def controller_config(hosts: list[SwitchHost], switch_addr: str, nb_port: int, token: str,
                      operator: SwitchHost, extra: str = "") -> str:
    """A TOML config for mp-controller: one switch, a route to each host, and one operator
    client (`token`, at `operator`'s address) for the experiment that drives it."""
    routes = "".join(
        f'[[route]]\nprefix = "{ipaddress.IPv4Interface(h.addr).network}"\nport = {h.port}\n'
        f'src_mac = "{h.switch_mac}"\ndst_mac = "{h.host_mac}"\n' for h in hosts)
    return (f'state = "state.sqlite"\nnorthbound = "127.0.0.1:{nb_port}"\nsched_mode = "fifo"\n'
            f'[[switch]]\nname = "s1"\naddress = "{switch_addr}"\n'
            f'[fastpath]\naddress = "10.0.2.1"\nproxy_addr = "10.0.2.10"\n'
            f"{routes}{extra}"
            f'[[class]]\nname = "ops"\n'
            f'[[client]]\nname = "operator"\ntoken = "{token}"\naddress = "{operator.ip}"\n'
            f'class = "ops"\noperator = true\n')


def receiver_inversions(rows: Sequence[Sequence[float]], base: float | None = None) -> int:
    """Inversions as seen by the receiver.

    `rows` are (sequence, rank, send time, receive time) in the order the packets arrived,
    which is the order they left the bottleneck. A packet left at about its receive time
    minus `base`, the smallest one-way delay of the run (the path without queueing,
    one serialisation included). It counts one inversion for each packet of smaller rank
    that was sent before it left and arrives after it: such a packet was (up to the
    host-to-switch latency, well below a millisecond) waiting in the switch when it left.
    Dropped packets never arrive and never count, as in the reference.
    """
    if not rows:
        return 0
    if base is None:
        base = min(recv - sent for _, _, sent, recv in rows)
    by_send = sorted(rows, key=lambda r: r[2])
    counter = RankCounter(int(r[1]) for r in rows)
    admitted: set[int] = set()
    nxt = 0
    total = 0
    for seq, rank, _, recv in rows:
        left = recv - base
        while nxt < len(by_send) and by_send[nxt][2] <= left:
            s = int(by_send[nxt][0])
            if s not in admitted:
                admitted.add(s)
                counter.add(int(by_send[nxt][1]), 1)
            nxt += 1
        if int(seq) not in admitted:  # only by rounding: it was sent before it left
            admitted.add(int(seq))
            counter.add(int(rank), 1)
        counter.add(int(rank), -1)
        total += counter.below(int(rank))
    return total


# -- sender and receiver (run inside the namespaces) -------------------------------------------
def send(to: tuple[str, int], plan_file: Path, log: Path) -> None:
    """Follow the plan (`write_plan`): each packet at its due time from its tag's socket
    (DSCP, source port); the log is the actual send time of each planned packet."""
    plan = json.loads(plan_file.read_text())
    socks = []
    for dscp, src_port in plan["tags"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if dscp is not None:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
        if src_port:
            s.bind(("0.0.0.0", src_port))
        socks.append(s)
    pad = bytes(PAYLOAD - HEADER.size)
    times = []
    start = time.monotonic()
    for seq, (due, tag, rank, flow) in enumerate(plan["packets"]):
        wait = start + due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sent = time.monotonic()
        socks[tag].sendto(HEADER.pack(seq, rank, flow, sent) + pad, to)
        times.append(sent)
    log.write_text(json.dumps(times))
    print(json.dumps({"sent": len(times)}))


def receive(listen: tuple[str, int], seconds: float, log: Path) -> None:
    """Record (seq, rank, send time, receive time) in arrival order for `seconds`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(listen)
    sock.settimeout(0.2)
    rows = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            continue
        recv = time.monotonic()
        if len(data) >= HEADER.size:
            seq, rank, _, sent = HEADER.unpack_from(data)
            rows.append((seq, rank, sent, recv))
    log.write_text(json.dumps(rows))
    print(json.dumps({"received": len(rows)}))


# -- the experiment ----------------------------------------------------------------------------

def strict_ranges(work: Workload) -> list[StrictRange]:
    """STRICT's 8 ranges (reference queue 0 first): uniform, 0..100 in even ranges; pfabric,
    the DSCP levels in 8 even groups (level edges as rank bounds, the last up to RANK_MAX)."""
    if work.name == "uniform":
        return even_strict_ranges(0, 100, QUEUES)
    edges = [t.rank for t in work.tags]
    firsts = [len(edges) * q // QUEUES for q in range(QUEUES + 1)]
    ranges: list[StrictRange] = []
    for q in range(QUEUES):
        if firsts[q + 1] <= firsts[q]:
            continue
        low = 0 if not ranges else edges[firsts[q]]
        high = edges[firsts[q + 1]] - 1 if firsts[q + 1] < len(edges) else RANK_MAX
        ranges.append(StrictRange(low, high, len(ranges)))
    return ranges


def strict_config(ranges: Sequence[StrictRange]) -> str:
    """[[strict]] tables of the controller config: reference queue q is BMv2 queue 7 - q."""
    return "\n".join(f"[[strict]]\nlow = {r.low}\nhigh = {r.high}\nqueue = {QUEUES - 1 - r.queue}"
                     for r in ranges)


def write_plan(work: Workload, path: Path) -> None:
    """The sender's plan: tags (DSCP or None, source port) and packets (due, tag, rank, flow)."""
    path.write_text(json.dumps({
        "tags": [[t.dscp, t.src_port] for t in work.tags],
        "packets": [[round(p.time, 6), p.tag, p.rank, p.flow] for p in work.packets]}))


def run_mode(tmp: Path, mode: str, plan: Path, seconds: float) -> dict[str, list]:
    """One run of the plan; the sender's send times and the receiver's log."""
    send_log, recv_log = tmp / f"{mode}-send.json", tmp / f"{mode}-recv.json"
    with NamespaceProcess(RECEIVER.name, python_module(
            "experiments.switch_scheduling", "--role", "receive", "--listen", f"0.0.0.0:{PORT}",
            "--seconds", str(seconds + DRAIN), "--log", str(recv_log)),
            capture_stdout=True, name="receiver") as receiver:
        time.sleep(0.3)
        with NamespaceProcess(SENDER.name, python_module(
                "experiments.switch_scheduling", "--role", "send", "--to",
                f"{RECEIVER.ip}:{PORT}", "--plan", str(plan), "--log", str(send_log)),
                capture_stdout=True, name="sender") as sender:
            sender.communicate(seconds + 20)
            if sender.poll() != 0:
                raise ProcessFailed(f"sender failed: {' | '.join(list(sender.output)[-5:])}")
        receiver.communicate(seconds + 20)
        if receiver.poll() != 0:
            raise ProcessFailed(f"receiver failed: {' | '.join(list(receiver.output)[-5:])}")
    return {"sent": json.loads(send_log.read_text()),
            "received": json.loads(recv_log.read_text())}


def reference(mode: str, trace: list[Packet], ranges: Sequence[StrictRange], depth: int,
              burst_pct: int, window: Sequence[int]) -> Any:
    """The reference as the switch behaves in `mode`: FIFO and AIFO one queue of `depth`;
    SP-PIFO with the v1model's rule (a packet a full queue drops has moved the bounds);
    AIFO and PACKS with the switch's k and its rank window as the run starts."""
    return simulate(trace, BOTTLENECK_BPS, mode, queues=QUEUES, depth=depth, fifo_depth=depth,
                    strict=ranges, full_queue_moves_bounds=True, burst_pct=burst_pct,
                    initial_window=window)


def analyse(work: Workload, mode: str, logs: dict[str, list], counters: dict[str, int],
            ranges: Sequence[StrictRange], depth: int, burst_pct: int,
            window: Sequence[int]) -> dict[str, Any]:
    """Per rank latency and drops, measured inversions, drops by cause, FCTs, and the
    reference on the send log."""
    sent, received = logs["sent"], logs["received"]
    plan = work.packets
    trace = [Packet(t, p.rank, WIRE) for t, p in zip(sent, plan, strict=True)]
    ref = reference(mode, trace, ranges, depth, burst_pct, window)
    pifo = simulate(trace, BOTTLENECK_BPS, "pifo", queues=QUEUES, depth=depth)
    sims = {"reference": ref, "pifo": pifo}
    if mode == "sppifo":
        sims["sppifo-paper-rule"] = simulate(trace, BOTTLENECK_BPS, "sppifo", queues=QUEUES,
                                             depth=depth)
    ref_per_rank = ref.summary()["per_rank"]
    got: dict[int, list[float]] = {}
    for _, rank, t, recv in received:
        got.setdefault(int(rank), []).append(1000 * (recv - t))
    per_rank: dict[str, dict[str, Any]] = {}
    for tag in work.tags:
        n_sent = sum(1 for p in plan if p.rank == tag.rank)
        lat = sorted(got.get(tag.rank, []))
        qs = quartiles(lat)
        refr = ref_per_rank.get(str(tag.rank), {})
        per_rank[str(tag.rank)] = {
            "sent": n_sent, "received": len(lat),
            "drop_rate": 1 - len(lat) / n_sent if n_sent else 0.0,
            "reference_drop_rate": refr.get("drop_rate", 0.0),
            "latency_ms_p25": qs and qs[0], "latency_ms_p50": qs and qs[1],
            "latency_ms_p75": qs and qs[2]}
    base = min((recv - t for _, _, t, recv in received), default=0.0)
    admission = counters.get(f"drops:{DropReason.ADMISSION.value}", 0)
    queue_full = counters.get(f"drops:{DropReason.QUEUE_FULL.value}", 0)
    lost = len(sent) - len(received)
    out: dict[str, Any] = {
        "mode": mode, "sent": len(sent), "received": len(received),
        "inversions_measured": receiver_inversions(received),
        "drops": {"total": lost, "admission": admission, "queue_full": queue_full,
                  "tail": lost - admission - queue_full},
        "base_delay_ms": 1000 * base,
        "enqueues": [counters.get(f"queue_enqueues:{q}", 0) for q in range(QUEUES)],
        "per_rank": per_rank,
        "simulated": {d: r.summary() | {"per_rank": None} for d, r in sims.items()}}
    ref_inv = ref.inversions
    out["agreement"] = {
        "inversions": (out["inversions_measured"] - ref_inv) / ref_inv if ref_inv else None,
        "drops": (lost - ref.drops) / ref.drops if ref.drops else None}
    if work.flows:
        measured_fct = flow_completion(work, sent, {int(seq): recv
                                                    for seq, _, _, recv in received})
        path = base - WIRE * 8 / BOTTLENECK_BPS  # host-to-switch and switch-to-host
        out["fct"] = {"measured": fct_summary(work, measured_fct)}
        for name, sim in (("reference", ref), ("pifo", pifo)):
            done = {i: start + WIRE * 8 / BOTTLENECK_BPS + path
                    for i, start in zip(sim.departures, sim.starts, strict=True)}
            out["fct"][name] = fct_summary(work, flow_completion(work, sent, done))
    return out


def read_counters(stub: nb_grpc.ControllerStub, meta: Any) -> dict[str, int]:
    """The switch's `drops` and `queue_enqueues` counters (packets), as name:index."""
    stats = stub.GetStats(nb.Empty(), metadata=meta, timeout=10)
    return {f"{c.name}:{c.index}": c.packets for sw in stats.switches for c in sw.counters
            if c.name in ("drops", "queue_enqueues")}


def drive(tmp: Path, nb_port: int, work: Workload, modes: Sequence[str], seconds: float,
          depth: int, burst_pct: int) -> dict[str, dict[str, Any]]:
    """Register the tags' ranks, then run the plan once per mode."""
    meta = (("authorization", f"Bearer {TOKEN}"),)
    plan = tmp / "plan.json"
    write_plan(work, plan)
    ranges = strict_ranges(work)
    window: list[int] = []  # the switch's rank window: zeros until AIFO or PACKS runs
    results = {}
    raw: dict[str, dict[str, list]] = {}
    with grpc.insecure_channel(f"127.0.0.1:{nb_port}") as channel:
        stub = nb_grpc.ControllerStub(channel)
        for tag in work.tags:
            reply = stub.RegisterStream(nb.Stream(
                key=nb.StreamKey(src_addr=SENDER.ip, dst_addr=RECEIVER.ip,
                                 src_port=tag.src_port,
                                 dscp=-1 if tag.dscp is None else tag.dscp),
                deadline_ms=tag.rank), metadata=meta, timeout=10)
            if reply.rank != tag.rank:
                raise RuntimeError(f"{tag}: rank {reply.rank} installed, not {tag.rank}")
        for mode in modes:
            stub.SetSchedMode(nb.SchedMode(mode=mode, burst_pct=burst_pct, queue_depth=depth),
                              metadata=meta, timeout=10)
            print(f"[{work.name} {mode}] {seconds:g} s of traffic, {len(work.packets)} packets "
                  f"...", end=" ", flush=True)
            started = time.monotonic()
            before = read_counters(stub, meta)
            logs = run_mode(tmp, mode, plan, seconds)
            after = read_counters(stub, meta)
            delta = {k: v - before.get(k, 0) for k, v in after.items()}
            results[mode] = analyse(work, mode, logs, delta, ranges, depth, burst_pct, window)
            raw[mode] = logs
            if mode in ("aifo", "packs"):
                window = [p.rank for p in work.packets][-RANK_WINDOW:]
            r = results[mode]
            print(f"{r['received']}/{r['sent']} delivered, {r['inversions_measured']:,} "
                  f"inversions ({time.monotonic() - started:.1f} s)", flush=True)
    (tmp / "logs.json").write_text(json.dumps(raw))
    return results


def experiment(args: argparse.Namespace) -> int:
    """Hosts, switch and controller up; traffic per mode; tables, JSON and PNG; cleanup."""
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes or len(set(modes)) != len(modes):
        print(f"switch_scheduling: bad --modes {args.modes!r}; a comma-separated subset of "
              f"{','.join(MODES)}, each once", file=sys.stderr)
        return 2
    if not capabilities.netns().available:
        print(f"switch_scheduling: needs network namespaces ({capabilities.netns().detail})",
              file=sys.stderr)
        return 1
    load = args.load if args.load is not None else DEFAULT_LOAD[args.workload]
    if args.workload == "uniform":
        work = uniform_workload(args.seconds, load, BOTTLENECK_BPS, WIRE, args.seed)
    else:
        work = pfabric_workload(args.seconds, load, BOTTLENECK_BPS, WIRE, PAYLOAD, args.seed,
                                scale=args.size_scale)
    hosts = [SENDER, RECEIVER]
    ranges = strict_ranges(work)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mp-ss-") as tmpdir:
        tmp = Path(tmpdir)
        config = launcher.SwitchConfig(
            ports={h.port: h.switch_if for h in hosts}, grpc_addr=launcher.free_grpc_addr(),
            port_rates={RECEIVER.port: BOTTLENECK_BPS}, queue_depth=args.queue_depth,
            log_level="warn")
        nb_port = launcher.free_tcp_port()
        conf = tmp / "controller.toml"
        conf.write_text(controller_config(hosts, config.grpc_addr, nb_port, TOKEN, SENDER,
                                          extra=strict_config(ranges) + "\n"))
        try:
            for host in hosts:
                host.create()
            print(f"hosts {SENDER.name} ({SENDER.ip}) -> {RECEIVER.name} ({RECEIVER.ip}); "
                  f"built-in target (MP_TARGET ignored: only it has a port shaper), port "
                  f"{RECEIVER.port} shaped to {BOTTLENECK_BPS / 1e6:g} Mbit/s, {QUEUES} queues "
                  f"of {args.queue_depth}; workload {work.name} ({len(work.tags)} ranks, "
                  f"{len(work.packets)} packets"
                  + (f", {len(work.flows)} flows" if work.flows else "")
                  + f"), load {load:g}, seed {args.seed}", flush=True)
            with launcher.SwitchProcess("soft", config), NamespaceProcess(
                    None, python_module("controller.daemon", "--config", str(conf)),
                    ready="pipeline pushed", ready_timeout=60, name="mp-controller"):
                results = drive(tmp, nb_port, work, modes, args.seconds, args.queue_depth,
                                args.burst_pct)
        finally:
            for host in hosts:
                host.destroy()
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        logs = out / f"switch_scheduling_{work.name}_logs.json"
        logs.write_text((tmp / "logs.json").read_text())
    summary = report.print_tables(work, results, ranges, AGREEMENT)
    meta = {"experiment": "switch_scheduling", "workload": work.name,
            "machine": platform.node(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "target": "soft",
            "bottleneck_bps": BOTTLENECK_BPS, "load": load, "seconds": args.seconds,
            "seed": args.seed, "workload_params": work.params,
            "ranks": [t.rank for t in work.tags],
            "tags": [{"rank": t.rank, "dscp": t.dscp, "src_port": t.src_port}
                     for t in work.tags],
            "payload_bytes": PAYLOAD, "wire_bytes": WIRE, "queues": QUEUES,
            "queue_depth": args.queue_depth, "burst_pct": args.burst_pct,
            "rank_window": RANK_WINDOW,
            "strict_ranges": [r.__dict__ for r in ranges],
            "agreement_bound": AGREEMENT,
            "estimator": (receiver_inversions.__doc__ or "").split("\n\n")[1].strip()}
    if work.flows:
        meta["flows"] = len(work.flows)
        meta["small_flows"] = sum(1 for f in work.flows.values() if f.small)
    path = out / f"switch_scheduling_{work.name}.json"
    path.write_text(json.dumps({"meta": meta, "modes": results} | summary, indent=1))
    png = report.plot(work, results, out / f"switch_scheduling_{work.name}.png",
                      f"{work.name} workload at {load:g} x 5 Mbit/s, built-in target, "
                      f"{args.seconds:g} s per mode")
    print(f"wrote {path}, {png} and {logs.name} (each mode's send times and receiver log) "
          f"({time.monotonic() - started:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.switch_scheduling",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workload", choices=WORKLOADS, default="uniform",
                        help="uniform ranks 0..100, or pFabric ranks of web-search flows")
    parser.add_argument("--seconds", type=float, default=5.0, help="traffic per mode (5)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--load", type=float,
                        help="offered load / bottleneck rate (uniform 1.3, pfabric 0.8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the plan (1)")
    parser.add_argument("--queue-depth", type=int, default=DEPTH,
                        help=f"packets per priority queue, the switch's and AIFO/PACKS's "
                             f"({DEPTH})")
    parser.add_argument("--burst-pct", type=int, default=BURST_PCT,
                        help=f"AIFO/PACKS k in percent ({BURST_PCT})")
    parser.add_argument("--size-scale", type=int, default=40,
                        help="pfabric: flow sizes are divided by this (40)")
    parser.add_argument("--out", default="results/switch", help="folder for JSON and PNG")
    parser.add_argument("--role", choices=["send", "receive"], help=argparse.SUPPRESS)
    parser.add_argument("--to", help=argparse.SUPPRESS)
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "send":
        host, port = args.to.rsplit(":", 1)
        send((host, int(port)), args.plan, args.log)
        return 0
    if args.role == "receive":
        host, port = args.listen.rsplit(":", 1)
        receive((host, int(port)), args.seconds, args.log)
        return 0
    if args.seconds <= 0 or (args.load is not None and args.load <= 0):
        parser.error("--seconds and --load must be positive")
    if not 1 <= args.queue_depth <= 4096:
        parser.error("--queue-depth must be 1..4096 (the P4 program's MAX_QUEUE_DEPTH)")
    if not 0 <= args.burst_pct <= 99:
        parser.error("--burst-pct must be 0..99")
    if args.size_scale < 1:
        parser.error("--size-scale must be >= 1")
    return experiment(args)


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
