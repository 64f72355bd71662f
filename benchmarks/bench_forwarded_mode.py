"""Forwarded mode (draft-ietf-masque-quic-proxy-06) against tunnelled mode on loopback: the
proxy's CPU time per MB echoed and the transfer time, mp-proxy and mp-target as separate
processes, the client in this process.

The proxy forwards in software here (no switch): the figure is what forwarded mode saves
the proxy host even before a switch takes the packets off it. Then, as root with
Mininet, the whole experiment `experiments.forwarded_mode` through the P4 switch
(tunnelled, forwarded in software, forwarded by the switch; echo and bulk; 0, 0.5 and
1.5% loss), whose headline figures become rows too.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.results import Row
from clikit import no_options
from hostagent.masque.client import MasqueClient

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
ROUNDS = 3
TRANSFERS = 8  # echoes per round and mode
SIZE = 1_000_000  # bytes per echo


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        out = subprocess.run(["ss", "-uln", f"sport = :{port}"], capture_output=True,
                             text=True).stdout
        if f":{port}" in out:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on UDP {port}")


async def _run(proxy_port: int, target_port: int, forwarded: bool) -> tuple[float, int, int]:
    """Echo TRANSFERS x SIZE; (seconds, packets the client forwarded, packets tunnelled)."""
    async with MasqueClient(LOOPBACK, proxy_port) as client:
        tunnel = await client.open_udp(LOOPBACK, target_port, quic_forwarding=forwarded)
        inner = await tunnel.quic(timeout=10)
        payload = os.urandom(SIZE)
        started = time.monotonic()
        for _ in range(TRANSFERS):
            if await inner.request(payload, timeout=60) != payload:
                raise RuntimeError("the echo differs")
        elapsed = time.monotonic() - started
        counters = tunnel.counters()
        inner.close()
        tunnel.close()
        return elapsed, counters.get("fwd_sent", 0), counters["sent"] - counters.get(
            "fwd_sent", 0)


def main() -> list[Row]:
    """Run both modes ROUNDS times, interleaved; print a table; the headline row."""
    proxy_port, target_port = _free_port(), _free_port()
    python = sys.executable
    target = subprocess.Popen([python, "-m", "hostagent.masque.target_cli", "--quic",
                               f"{LOOPBACK}:{target_port}"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen([python, "-m", "hostagent.masque.proxy_cli", "--listen",
                              f"{LOOPBACK}:{proxy_port}", "--allow", "127.0.0.0/8",
                              "--quic-forwarding"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float, int, int]]] = {"tunnelled": [],
                                                               "forwarded": []}
    try:
        _wait_listening(target_port, target)
        _wait_listening(proxy_port, proxy)
        for _ in range(ROUNDS):
            for mode in ("tunnelled", "forwarded"):
                cpu = _cpu_seconds(proxy.pid)
                elapsed, fwd, tun = asyncio.run(_run(proxy_port, target_port,
                                                     mode == "forwarded"))
                results[mode].append((elapsed, _cpu_seconds(proxy.pid) - cpu, fwd, tun))
    finally:
        for proc in (proxy, target):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    mb = 2 * TRANSFERS * SIZE / 1e6  # echoed: both directions
    print(f"{TRANSFERS} echoes of {SIZE // 1000} KB per run, {ROUNDS} runs per mode, "
          "loopback, proxy forwarding in software")
    print(f"{'mode':<10} {'proxy CPU s/MB':>15} {'transfer s':>11} {'client pkts fwd/tun':>20}")
    summary = {}
    for mode, runs in results.items():
        cpu = sorted(r[1] / mb for r in runs)[len(runs) // 2]
        secs = sorted(r[0] for r in runs)[len(runs) // 2]
        summary[mode] = cpu
        print(f"{mode:<10} {cpu:>15.4f} {secs:>11.2f} {runs[-1][2]:>9} / {runs[-1][3]:<9}")
    rows = [Row("QUIC-aware proxying, forwarded mode (software, loopback)",
                "proxy CPU s per MB echoed: tunnelled / forwarded (median of 3)",
                f"{summary['tunnelled']:.4f} / {summary['forwarded']:.4f}", "-", "host")]
    return rows + switch_rows()


SWITCH_OUT = Path("results/forwarded")
ORDER = ("tunnelled, datagram", "tunnelled, stream", "forwarded, proxy software",
         "forwarded, switch")


def _cells(summary: dict[str, Any], prefix: str, value: Callable[[dict[str, Any]], Any],
           fmt: str) -> str:
    """' / '-joined `value` of the four variants of runs `prefix` (workload, loss)."""
    out = []
    for variant in ORDER:
        row = summary.get(f"{prefix}, {variant}")
        v = None if row is None else value(row)
        out.append("-" if v is None else format(v, fmt))
    return " / ".join(out)


def switch_rows() -> list[Row]:
    """Run experiments.forwarded_mode (root and Mininet, else a skip line); its rows."""
    from experiments import forwarded_mode
    from netlab import capabilities

    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"forwarded mode through the switch: skipped ({cap.detail})")
            return []
    forwarded_mode.main(["--out", str(SWITCH_OUT)])  # rows of the runs that finished
    return switch_rows_from(SWITCH_OUT / "forwarded_mode.json")


def switch_rows_from(path: Path) -> list[Row]:
    """The headline rows of a saved experiments.forwarded_mode result ([] if none)."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    s, target = data["summary"], data["meta"]["target"]
    order = "tunnelled dgram / stream / forwarded sw / switch"
    proxy_mb = lambda r: r["cpu_s_per_mb"].get("mp-proxy")  # noqa: E731
    rows = []
    for workload, what in (("bulk", "bulk 2 x 1 MB"), ("echo", "echo 100 x 10 KB")):
        for loss in ("0%", "1.5%"):
            rows.append(Row(f"Forwarded mode through the P4 switch ({what}, 5 Mbit/s, 50 ms, "
                            f"{loss} loss)", f"proxy CPU s per MB: {order}",
                            _cells(s, f"{workload}, loss {loss}", proxy_mb, ".3f"),
                            "- (whole run, set-up included)", target))
    rows.append(Row("Forwarded mode through the P4 switch (bulk 2 x 1 MB, 1.5% loss)",
                    f"echo throughput Mbit/s: {order}",
                    _cells(s, "bulk, loss 1.5%", lambda r: r["mbit_s"], ".2f"), "-", target))
    rows.append(Row("Forwarded mode through the P4 switch (echo 100 x 10 KB, 1.5% loss)",
                    f"all done s: {order}",
                    _cells(s, "echo, loss 1.5%", lambda r: r["all_done_s"], ".1f"), "-",
                    target))
    transfer_mb = lambda r: r["transfer_cpu_s_per_mb"].get("mp-proxy")  # noqa: E731
    for check in [c for c in data.get("bar", []) if c["loss"] in (0, 1.5)]:
        what = {"bulk": "bulk 2 x 1 MB", "echo-setup": "echo 100 x 10 KB"}.get(
            check["workload"], check["workload"])
        loss = f"{check['loss']:g}%"
        prefix = f"{check['workload']}, loss {loss}"
        rows.append(Row(f"Forwarded mode through the P4 switch ({what} after set-up, {loss} "
                        "loss)", f"proxy CPU s per MB after set-up: {order}",
                        _cells(s, prefix, transfer_mb, ".4f"),
                        "switch at most 1/20 of tunnelled (issue 14's bar): "
                        + ("met" if check["met"] else "NOT met"), target))
        rows.append(Row(f"Forwarded mode through the P4 switch ({what}, {loss} loss)",
                        "after set-up: inner short-header packets the proxy host relayed / "
                        "the switch forwarded (late handshake packets, always tunnelled); "
                        "proxy CPU ms per tunnel set-up",
                        f"{check['relayed_after_setup']} / {check['switch_forwarded']} "
                        f"({check.get('long_header_after_setup', 0)}); "
                        f"{check['setup_cpu_ms_per_tunnel']:.1f}", "0 / all", target))
    rows.append(Row("Forwarded mode through the P4 switch (bulk, 1.5% loss)",
                    f"switch process CPU s per MB: {order}",
                    _cells(s, "bulk, loss 1.5%", lambda r: r["cpu_s_per_mb"].get("switch"),
                           ".3f"), "0 on Tofino (in the pipeline)", target))
    return rows


if __name__ == "__main__":
    no_options("python -m benchmarks.bench_forwarded_mode", __doc__)
    main()
