"""The switch-scheduling experiment: FIFO, STRICT and SP-PIFO at a 5 Mbit/s bottleneck,
measured on the built-in target and compared with the pure-Python reference.

Two hosts in namespaces (mpss-h1 sends, mpss-h3 receives) on the built-in target,
whose port towards the receiver is shaped to 5 Mbit/s. This always uses the built-in
target, whatever MP_TARGET says: the port-level shaper exists only there (BMv2 shapes
each priority queue on its own, which breaks strict priority at a bottleneck).
mp-controller installs the pipeline, the routes, the STRICT ranges ([[strict]]) and one
stream rank per DSCP tag (RegisterStream, rank = deadline_ms): 16 ranks spread evenly
over 0..100. One sender process draws each packet's rank uniformly from them (seeded)
and sends Poisson-spaced 1000-byte datagrams at `--load` x the bottleneck (1.3). The
same traffic runs with the switch in each mode. Per rank: one-way latency quartiles and
drop rate. Inversions are estimated from the receiver's view (see `receiver_inversions`)
and the reference (`schedmodels.portsim`) is run on the sender's log of each run
for FIFO, STRICT, SP-PIFO and PIFO. Writes JSON and a PNG, prints tables.

    python -m experiments.switch_scheduling [--seconds 8] [--modes fifo,strict,sppifo] \\
        [--load 1.3] [--seed 1] [--out results/switch]

The same module is the sender and the receiver inside the namespaces (`--role`).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import random
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
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from netlab import capabilities, names
from netlab.hosts import SwitchHost
from netlab.nsprocess import NamespaceProcess, ProcessFailed, python_module
from schedmodels.portsim import (
    Packet,
    RankCounter,
    StrictRange,
    even_strict_ranges,
    quartiles,
    simulate,
)

SENDER = SwitchHost(names.netns("ss1"), 1, "10.0.1.10/24", "02:00:00:00:01:0a",
                    "02:aa:00:00:00:01", prefix=names.ifname("ss"))
RECEIVER = SwitchHost(names.netns("ss3"), 3, "10.0.3.10/24", "02:00:00:00:03:0a",
                      "02:aa:00:00:00:03", prefix=names.ifname("ss"))
BOTTLENECK_BPS = 5_000_000
MODES = ("fifo", "strict", "sppifo")
#: 16 ranks spread evenly over 0..100 (the paper's uniform ranks 0-100, on 16 DSCP tags)
RANKS = tuple(round(100 * i / 15) for i in range(16))
DSCP_BASE = 10  # rank RANKS[i] is tagged DSCP DSCP_BASE + i
PAYLOAD = 1000  # UDP payload bytes
WIRE_OVERHEAD = 14 + 20 + 8  # Ethernet, IPv4, UDP: what the port shaper counts
QUEUES, DEPTH = 8, 64  # the built-in target's priority queues and default depth (packets)
PORT = 9000
TOKEN = "mpss-operator"
HEADER = struct.Struct("!IHd")  # sequence, rank, send time (CLOCK_MONOTONIC, system-wide)
PAPER = {"fifo": 864_000, "sppifo": 262_000, "ratio": 3.3,
         "setting": "SP-PIFO paper (NSDI'20) repository: uniform ranks 0-100, 8 queues, "
                    "TCP at 10 Gbit/s, FIFO 80 packets vs 8 x 10"}
#: STRICT: ranks 0..100 in 8 even ranges; reference queue q (0 first) is BMv2 queue 7 - q
STRICT_RANGES = even_strict_ranges(0, 100, QUEUES)



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
def send(to: tuple[str, int], rate_bps: float, seconds: float, seed: int, log: Path) -> None:
    """Poisson-spaced datagrams for `seconds`, each with a rank drawn uniformly from RANKS
    and sent from that rank's socket (its DSCP tag); the log is (seq, rank, time, bytes)."""
    socks = []
    for i in range(len(RANKS)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, (DSCP_BASE + i) << 2)
        socks.append(s)
    rng = random.Random(seed)
    mean_gap = (PAYLOAD + WIRE_OVERHEAD) * 8 / rate_bps
    pad = bytes(PAYLOAD - HEADER.size)
    rows = []
    start = time.monotonic()
    due = start
    seq = 0
    while True:
        due += rng.expovariate(1 / mean_gap)
        i = rng.randrange(len(RANKS))
        if due - start >= seconds:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        sent = time.monotonic()
        socks[i].sendto(HEADER.pack(seq, RANKS[i], sent) + pad, to)
        rows.append((seq, RANKS[i], sent, PAYLOAD + WIRE_OVERHEAD))
        seq += 1
    log.write_text(json.dumps(rows))
    print(json.dumps({"sent": seq}))


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
            rows.append((*HEADER.unpack_from(data), recv))
    log.write_text(json.dumps(rows))
    print(json.dumps({"received": len(rows)}))


# -- the experiment ----------------------------------------------------------------------------

def strict_config(ranges: Sequence[StrictRange]) -> str:
    """[[strict]] tables of the controller config: reference queue q is BMv2 queue 7 - q."""
    return "\n".join(f"[[strict]]\nlow = {r.low}\nhigh = {r.high}\nqueue = {QUEUES - 1 - r.queue}"
                     for r in ranges)


def run_mode(tmp: Path, mode: str, seconds: float, load: float, seed: int) -> dict[str, list]:
    """One run of traffic; the sender's and the receiver's logs."""
    send_log, recv_log = tmp / f"{mode}-send.json", tmp / f"{mode}-recv.json"
    with NamespaceProcess(RECEIVER.name, python_module(
            "experiments.switch_scheduling", "--role", "receive", "--listen", f"0.0.0.0:{PORT}",
            "--seconds", str(seconds + 2.5), "--log", str(recv_log)),
            capture_stdout=True, name="receiver") as receiver:
        time.sleep(0.3)
        with NamespaceProcess(SENDER.name, python_module(
                "experiments.switch_scheduling", "--role", "send", "--to",
                f"{RECEIVER.ip}:{PORT}", "--rate", str(load * BOTTLENECK_BPS),
                "--seconds", str(seconds), "--seed", str(seed), "--log", str(send_log)),
                capture_stdout=True, name="sender") as sender:
            sender.communicate(seconds + 20)
            if sender.poll() != 0:
                raise ProcessFailed(f"sender failed: {' | '.join(list(sender.output)[-5:])}")
        receiver.communicate(seconds + 20)
        if receiver.poll() != 0:
            raise ProcessFailed(f"receiver failed: {' | '.join(list(receiver.output)[-5:])}")
    return {"sent": json.loads(send_log.read_text()), "received": json.loads(recv_log.read_text())}


def analyse(mode: str, logs: dict[str, list]) -> dict[str, Any]:
    """Per rank latency and drops, measured inversions, and the reference on the send log."""
    sent, received = logs["sent"], logs["received"]
    per_rank: dict[str, dict[str, Any]] = {}
    for rank in RANKS:
        n_sent = sum(1 for r in sent if r[1] == rank)
        lat = sorted(1000 * (recv - t) for _, rk, t, recv in received if rk == rank)
        qs = quartiles(lat)
        per_rank[str(rank)] = {
            "sent": n_sent, "received": len(lat),
            "drop_rate": 1 - len(lat) / n_sent if n_sent else 0.0,
            "latency_ms_p25": qs and qs[0], "latency_ms_p50": qs and qs[1],
            "latency_ms_p75": qs and qs[2]}
    trace = [Packet(t, rank, size) for _, rank, t, size in sent]
    sims = {d: simulate(trace, BOTTLENECK_BPS, d, queues=QUEUES, depth=DEPTH, fifo_depth=DEPTH,
                        strict=STRICT_RANGES) for d in ("fifo", "strict", "sppifo", "pifo")}
    sims["sppifo-v1model"] = simulate(trace, BOTTLENECK_BPS, "sppifo", queues=QUEUES,
                                      depth=DEPTH, full_queue_moves_bounds=True)
    return {"mode": mode, "sent": len(sent), "received": len(received),
            "inversions_measured": receiver_inversions(received),
            "per_rank": per_rank,
            "simulated": {d: s.summary() for d, s in sims.items()}}


def drive(tmp: Path, nb_port: int, modes: Sequence[str], seconds: float, load: float,
          seed: int) -> dict[str, dict[str, Any]]:
    """Register the ranks, then run the traffic once per mode."""
    meta = (("authorization", f"Bearer {TOKEN}"),)
    results = {}
    with grpc.insecure_channel(f"127.0.0.1:{nb_port}") as channel:
        stub = nb_grpc.ControllerStub(channel)
        for i, rank in enumerate(RANKS):
            reply = stub.RegisterStream(nb.Stream(
                key=nb.StreamKey(src_addr=SENDER.ip, dst_addr=RECEIVER.ip, dscp=DSCP_BASE + i),
                deadline_ms=rank), metadata=meta, timeout=10)
            if reply.rank != rank:
                raise RuntimeError(f"DSCP {DSCP_BASE + i}: rank {reply.rank} installed, "
                                   f"not {rank}")
        for mode in modes:
            stub.SetSchedMode(nb.SchedMode(mode=mode), metadata=meta, timeout=10)
            print(f"[{mode}] {seconds:g} s of traffic at {load:g} x "
                  f"{BOTTLENECK_BPS / 1e6:g} Mbit/s ...", end=" ", flush=True)
            started = time.monotonic()
            results[mode] = analyse(mode, run_mode(tmp, mode, seconds, load, seed))
            print(f"{results[mode]['received']}/{results[mode]['sent']} delivered "
                  f"({time.monotonic() - started:.1f} s)", flush=True)
    return results


def ratio(a: float, b: float) -> float | None:
    """a / b, or None when b is 0."""
    return a / b if b else None


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


def print_tables(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The per-rank table, the inversion table and the ratios (returned for the JSON)."""
    modes = list(results)
    print()
    header = f"{'rank':>4} " + " ".join(f"| {m + ' p50 ms (p25-p75)':<27} {'drop':>5} "
                                        for m in modes)
    print(header)
    print("-" * len(header))
    for rank in RANKS:
        cells = []
        for m in modes:
            row = results[m]["per_rank"][str(rank)]
            if row["latency_ms_p50"] is None:
                lat = "-"
            else:
                lat = (f"{row['latency_ms_p50']:.1f} ({row['latency_ms_p25']:.1f}-"
                       f"{row['latency_ms_p75']:.1f})")
            cells.append(f"| {lat:<27} {100 * row['drop_rate']:>4.0f}% ")
        print(f"{rank:>4} " + " ".join(cells))
    print()
    header = (f"{'switch mode':<12} {'delivered':>9} {'measured inv':>13} {'per pkt':>8} "
              f"{'reference':>10} {'ref as switch':>14} {'ref PIFO':>9}")
    print(header)
    print("-" * len(header))
    for m in modes:
        r = results[m]
        sim = r["simulated"][m]["inversions"]
        as_switch = r["simulated"]["sppifo-v1model" if m == "sppifo" else m]["inversions"]
        per = r["inversions_measured"] / r["received"] if r["received"] else 0.0
        print(f"{m:<12} {r['received']:>9} {r['inversions_measured']:>13,} {per:>8.1f} "
              f"{sim:>10,} {as_switch:>14,} {r['simulated']['pifo']['inversions']:>9,}")
    print("reference: the paper's rule (a full queue changes no bound); ref as switch: "
          "SP-PIFO as the v1model\nprogram behaves (a packet that a full queue drops has "
          "already moved the bounds)")
    ratios: dict[str, float | None] = {}
    if "fifo" in results and "sppifo" in results:
        ratios["measured"] = ratio(results["fifo"]["inversions_measured"],
                                   results["sppifo"]["inversions_measured"])
        ratios["reference"] = ratio(results["fifo"]["simulated"]["fifo"]["inversions"],
                                    results["sppifo"]["simulated"]["sppifo"]["inversions"])
        ratios["reference_as_switch"] = ratio(
            results["fifo"]["simulated"]["fifo"]["inversions"],
            results["sppifo"]["simulated"]["sppifo-v1model"]["inversions"])
    ref = results.get("sppifo", results[modes[-1]])["simulated"]
    ratios["reference_same_trace"] = ratio(ref["fifo"]["inversions"],
                                           ref["sppifo"]["inversions"])
    print(f"\nFIFO / SP-PIFO inversions: measured {fmt_ratio(ratios.get('measured'))}, "
          f"reference {fmt_ratio(ratios.get('reference'))}, "
          f"as switch {fmt_ratio(ratios.get('reference_as_switch'))} "
          f"(on one trace {fmt_ratio(ratios['reference_same_trace'])});\n"
          f"paper anchor 864k / 262k = {PAPER['ratio']}x ({PAPER['setting']})")
    return ratios


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Left: p50 latency per rank per mode (p25-p75 band); right: inversions per mode,
    measured beside the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for m, r in results.items():
        xs = [rk for rk in RANKS if r["per_rank"][str(rk)]["latency_ms_p50"] is not None]
        p50 = [r["per_rank"][str(rk)]["latency_ms_p50"] for rk in xs]
        p25 = [r["per_rank"][str(rk)]["latency_ms_p25"] for rk in xs]
        p75 = [r["per_rank"][str(rk)]["latency_ms_p75"] for rk in xs]
        left.plot(xs, p50, marker="o", label=m)
        left.fill_between(xs, p25, p75, alpha=0.2)
    left.set_yscale("log")
    left.set_xlabel("rank (smaller is more urgent)")
    left.set_ylabel("one-way latency, ms (p50, p25-p75; log)")
    left.set_title("latency per rank")
    left.legend()
    labels = list(results) + ["pifo (ref)"]
    measured = [results[m]["inversions_measured"] for m in results] + [0]
    ref = [results[m]["simulated"][m]["inversions"] for m in results]
    last = results.get("sppifo", next(iter(results.values())))
    ref.append(last["simulated"]["pifo"]["inversions"])
    x = range(len(labels))
    right.bar([i - 0.2 for i in x], measured[:-1] + [float("nan")], width=0.4,
              label="measured (receiver view)")
    right.bar([i + 0.2 for i in x], ref, width=0.4, label="reference on the send log")
    right.set_xticks(list(x), labels)
    right.set_yscale("symlog")
    right.set_ylabel("inversions (symlog)")
    right.set_title("inversions per mode")
    right.legend(loc="upper right", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def experiment(args: argparse.Namespace) -> int:
    """Hosts, switch and controller up; traffic per mode; tables, JSON and PNG; cleanup."""
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        print(f"switch_scheduling: unknown mode(s) {', '.join(bad) or '(none)'}; "
              f"choose from {','.join(MODES)}", file=sys.stderr)
        return 2
    if not capabilities.netns().available:
        print(f"switch_scheduling: needs network namespaces ({capabilities.netns().detail})",
              file=sys.stderr)
        return 1
    hosts = [SENDER, RECEIVER]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mp-ss-") as tmpdir:
        tmp = Path(tmpdir)
        config = launcher.SwitchConfig(
            ports={h.port: h.switch_if for h in hosts}, grpc_addr=launcher.free_grpc_addr(),
            port_rates={RECEIVER.port: BOTTLENECK_BPS}, log_level="warn")
        nb_port = launcher.free_tcp_port()
        conf = tmp / "controller.toml"
        conf.write_text(controller_config(hosts, config.grpc_addr, nb_port, TOKEN, SENDER,
                                          extra=strict_config(STRICT_RANGES) + "\n"))
        try:
            for host in hosts:
                host.create()
            print(f"hosts {SENDER.name} ({SENDER.ip}) -> {RECEIVER.name} ({RECEIVER.ip}); "
                  f"built-in target (MP_TARGET ignored: only it has a port shaper), port "
                  f"{RECEIVER.port} shaped to {BOTTLENECK_BPS / 1e6:g} Mbit/s; "
                  f"{len(RANKS)} ranks 0..100, load {args.load:g}, seed {args.seed}",
                  flush=True)
            with launcher.SwitchProcess("soft", config), NamespaceProcess(
                    None, python_module("controller.daemon", "--config", str(conf)),
                    ready="pipeline pushed", ready_timeout=60, name="mp-controller"):
                results = drive(tmp, nb_port, modes, args.seconds, args.load, args.seed)
        finally:
            for host in hosts:
                host.destroy()
    ratios = print_tables(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": "switch_scheduling", "machine": platform.node(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "target": "soft", "bottleneck_bps": BOTTLENECK_BPS, "load": args.load,
            "seconds": args.seconds, "seed": args.seed, "ranks": list(RANKS),
            "dscp": {str(r): DSCP_BASE + i for i, r in enumerate(RANKS)},
            "payload_bytes": PAYLOAD, "wire_bytes": PAYLOAD + WIRE_OVERHEAD,
            "queues": QUEUES, "queue_depth": DEPTH, "fifo_depth": DEPTH,
            "strict_ranges": [r.__dict__ for r in STRICT_RANGES],
            "estimator": receiver_inversions.__doc__.split("\n\n")[1].strip()}
    path = out / "switch_scheduling.json"
    path.write_text(json.dumps({"meta": meta, "modes": results, "ratios": ratios,
                                "paper": PAPER}, indent=1))
    png = plot(results, out / "switch_scheduling.png",
               f"{len(RANKS)} ranks at {args.load:g} x 5 Mbit/s, built-in target, "
               f"{args.seconds:g} s per mode")
    print(f"wrote {path} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.switch_scheduling",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="traffic per mode (8)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--load", type=float, default=1.3,
                        help="offered load / bottleneck rate (1.3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of ranks and gaps (1)")
    parser.add_argument("--out", default="results/switch", help="folder for JSON and PNG")
    parser.add_argument("--role", choices=["send", "receive"], help=argparse.SUPPRESS)
    parser.add_argument("--to", help=argparse.SUPPRESS)
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "send":
        host, port = args.to.rsplit(":", 1)
        send((host, int(port)), args.rate, args.seconds, args.seed, args.log)
        return 0
    if args.role == "receive":
        host, port = args.listen.rsplit(":", 1)
        receive((host, int(port)), args.seconds, args.log)
        return 0
    if args.seconds <= 0 or args.load <= 0:
        parser.error("--seconds and --load must be positive")
    return experiment(args)


if __name__ == "__main__":
    sys.exit(main())
