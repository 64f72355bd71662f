"""`make demo`: the main job at this stage: priority scheduling in the P4 switch.

Two hosts in namespaces on the built-in target; the port towards the receiver is
shaped to 5 Mbit/s. The controller (mp-controller) installs routes and two stream
ranks: a small high-priority flow (DSCP 46, priority 0) and a bulk low-priority
flow (DSCP 0, priority 10) that alone overloads the bottleneck. The same traffic
runs with the switch in FIFO and in SP-PIFO mode, and the table shows the
high-priority flow keeping its latency under SP-PIFO while the bulk flow absorbs
the queueing. Without root or network namespaces it prints what is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bmv2 import launcher
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from topologies import capabilities
from topologies.hosts import SwitchHost, controller_config
from topologies.nsprocess import NamespaceProcess, python_module

COMMANDS = ("mp-switch", "mp-controller", "mp-ctl", "mp-proxy", "mp-client", "mp-target")
SENDER = SwitchHost("mpdemo-h1", 1, "10.0.1.10/24", "02:00:00:00:01:0a", "02:aa:00:00:00:01",
                    prefix="mpdm")
RECEIVER = SwitchHost("mpdemo-h3", 3, "10.0.3.10/24", "02:00:00:00:03:0a",
                      "02:aa:00:00:00:03", prefix="mpdm")
BOTTLENECK_BPS = 5_000_000
FLOWS = {1: ("high priority", 46, "0.4mbit", 200, 0), 2: ("bulk", 0, "8mbit", 1200, 10)}
TOKEN = "demo-operator"



def report() -> bool:
    print("masque-pifo demo: host report")
    print(f"{'capability':<20} {'status':<8} detail")
    for cap in capabilities.all_capabilities():
        print(f"{cap.name:<20} {'yes' if cap.available else 'no':<8} {cap.detail}")
    print("console scripts installed: " + ", ".join(COMMANDS))
    print()
    return capabilities.netns().available



def run_traffic(seconds: float) -> dict[int, dict]:
    receiver = NamespaceProcess(RECEIVER.name, python_module(
        "topologies.udp_probe", "receive", "--listen", "0.0.0.0:9000",
        "--seconds", str(seconds + 2)), capture_stdout=True, name="receiver")
    receiver.start()
    time.sleep(0.3)
    senders = []
    for flow, (_, dscp, rate, size, _) in FLOWS.items():
        sender = NamespaceProcess(SENDER.name, python_module(
            "topologies.udp_probe", "send", "--to", f"{RECEIVER.ip}:9000", "--rate", rate,
            "--size", str(size), "--seconds", str(seconds), "--tos", str(dscp << 2),
            "--flow", str(flow)), capture_stdout=True, name=f"sender {flow}")
        sender.start()
        senders.append(sender)
    sent = {}
    for sender in senders:
        row = json.loads(sender.communicate(seconds + 20))
        sent[row["flow"]] = row["sent"]
    got = {int(k): v for k, v in json.loads(receiver.communicate(seconds + 20)).items()}
    return {f: {**got.get(f, {"received": 0, "delays_ms": []}), "sent": sent[f]} for f in FLOWS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topologies.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="traffic per mode (6)")
    args = parser.parse_args(argv)
    if not report():
        print(f"demo: the switch demo needs network namespaces "
              f"({capabilities.netns().detail}); nothing else to show")
        return 0
    hosts = [SENDER, RECEIVER]
    with tempfile.TemporaryDirectory(prefix="mp-demo-") as tmp:
        config = launcher.SwitchConfig(
            ports={h.port: h.switch_if for h in hosts}, grpc_addr=launcher.free_grpc_addr(),
            port_rates={RECEIVER.port: BOTTLENECK_BPS}, log_level="warn")
        nb_port = launcher.free_tcp_port()
        conf = Path(tmp) / "controller.toml"
        conf.write_text(controller_config(hosts, config.grpc_addr, nb_port, TOKEN, SENDER))
        try:
            for host in hosts:
                host.create()
            print(f"hosts {SENDER.name} ({SENDER.ip}) and {RECEIVER.name} ({RECEIVER.ip}) "
                  f"on switch ports {SENDER.port} and {RECEIVER.port}; "
                  f"port {RECEIVER.port} shaped to {BOTTLENECK_BPS / 1e6:g} Mbit/s", flush=True)
            with launcher.SwitchProcess("soft", config), NamespaceProcess(
                    None, python_module("controller.daemon", "--config", str(conf)),
                    ready="pipeline pushed", ready_timeout=60, name="mp-controller"):
                print("built-in target and mp-controller up; pipeline and routes installed",
                      flush=True)
                results = drive(nb_port, args.seconds)
        finally:
            for host in hosts:
                host.destroy()
    print_table(results)
    return 0


def drive(nb_port: int, seconds: float) -> dict[str, dict[int, dict]]:
    meta = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(f"127.0.0.1:{nb_port}") as channel:
        stub = nb_grpc.ControllerStub(channel)
        for _, dscp, _, _, priority in FLOWS.values():
            stub.RegisterStream(nb.Stream(
                key=nb.StreamKey(src_addr=SENDER.ip, dst_addr=RECEIVER.ip, dscp=dscp),
                priority=priority), metadata=meta, timeout=10)
        results = {}
        for mode in ("fifo", "sppifo"):
            stub.SetSchedMode(nb.SchedMode(mode=mode), metadata=meta, timeout=10)
            print(f"[{mode}] {seconds:g} s of traffic ...", flush=True)
            results[mode] = run_traffic(seconds)
    return results


def print_table(results: dict[str, dict[int, dict]]) -> None:
    print()
    header = (f"{'switch mode':<12} {'flow':<14} {'offered':>8} {'delivered':>10} "
              f"{'p50 ms':>8} {'p99 ms':>8}")
    print(header)
    print("-" * len(header))
    for mode, flows in results.items():
        for flow, row in flows.items():
            name, _, rate, _, _ = FLOWS[flow]
            delays = row["delays_ms"]
            q = statistics.quantiles(delays, n=100) if len(delays) > 1 else [0.0] * 99
            share = row["received"] / row["sent"] if row["sent"] else 0.0
            print(f"{mode:<12} {name:<14} {rate:>8} {100 * share:>9.0f}% "
                  f"{q[49]:>8.1f} {q[98]:>8.1f}")
    print("\nSP-PIFO puts the high-priority flow's rank in a queue served before the bulk "
          "flow's:\nits latency stays near the serialisation time while the bulk flow "
          "absorbs the queueing.")
    print("demo done")


if __name__ == "__main__":
    sys.exit(main())
