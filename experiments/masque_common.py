"""Where the MASQUE experiments run, and one run of the client workload there.

`--via namespaces` (default): the three-namespace topology below. `--via switch`:
the Mininet topology of `masque_proxy.py` (client, P4 switch on the built-in
target, proxy with the controller, target), with the impairment on the client's
access link, once with the fast path off (the proxy relays every packet) and once
on (the switch carries each tunnel), so the table shows what the switch adds:
the proxy host's CPU seconds per MB, beside completion and latency. On the fast
path the inner packets bypass the outer HTTP/3 connection, so the outer stream
scheduler has no say over them there.

    client ns (mp<run>-cl)  ==emulated link==  proxy ns (mp<run>-px)  --plain veth--  target ns
    10.252.0.1/30                               10.252.0.2/30 | 10.252.1.1/30      10.252.1.2/30

The namespace names carry a per-run tag (`netlab.names`), so runs on one machine do
not meet. The impairment (rate, delay, loss) is on the client-proxy
link only, where the outer HTTP/3 connection runs, as in the seed thesis: that
is where the outer stream scheduler decides. `placement` says on which egress:
the client's only (client to proxy, as a netem qdisc on one interface),
the proxy's only, or both. The proxy-target link is a plain veth pair without
impairment. The proxy relays only to the target subnet (`--allow 10.252.1.0/30`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from netlab import capabilities, names
from netlab.linkemu import LinkParams, format_spec, parse_spec
from netlab.netns_link import EmulatedLink, netns_exists
from netlab.nsprocess import NamespaceProcess, ProcessFailed, python_module

CLIENT_NS, PROXY_NS, TARGET_NS = names.netns("cl"), names.netns("px"), names.netns("tg")
CLIENT_ADDR, PROXY_ADDR = "10.252.0.1/30", "10.252.0.2/30"
PROXY_TARGET_SIDE, TARGET_ADDR = "10.252.1.1/30", "10.252.1.2/30"
TARGET_NET = "10.252.1.0/30"
PROXY_PORT = TARGET_PORT = 4433


def _ip(cmd: Sequence[str]) -> None:
    done = subprocess.run(["ip", *cmd], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"`ip {' '.join(cmd)}` failed: {done.stderr.strip()}")


class PlainLink:
    """A veth pair between two namespaces, no impairment; removed (with any namespace it
    made) on exit."""

    def __init__(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str,
                 ifname_a: str = names.ifname("pt"), ifname_b: str = names.ifname("tp")) -> None:
        self.ns_a, self.addr_a, self.ns_b, self.addr_b = ns_a, addr_a, ns_b, addr_b
        self.ifname_a, self.ifname_b = ifname_a, ifname_b
        self._made_ns: list[str] = []
        self._made_veth = False

    def __enter__(self) -> PlainLink:
        try:
            for ns in (self.ns_a, self.ns_b):
                if not netns_exists(ns):
                    _ip(["netns", "add", ns])
                    self._made_ns.append(ns)
            _ip(["link", "add", self.ifname_a, "netns", self.ns_a, "type", "veth", "peer",
                 "name", self.ifname_b, "netns", self.ns_b])
            self._made_veth = True
            for ns, ifname, addr in ((self.ns_a, self.ifname_a, self.addr_a),
                                     (self.ns_b, self.ifname_b, self.addr_b)):
                _ip(["-n", ns, "addr", "add", addr, "dev", ifname])
                _ip(["-n", ns, "link", "set", "dev", ifname, "up"])
                _ip(["-n", ns, "link", "set", "dev", "lo", "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Delete the veth pair and the namespaces this link made."""
        if self._made_veth and netns_exists(self.ns_a):
            subprocess.run(["ip", "-n", self.ns_a, "link", "del", "dev", self.ifname_a],
                           capture_output=True)
        self._made_veth = False
        for ns in reversed(self._made_ns):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self._made_ns.clear()


#: where the impairment goes: the egress of the client (towards the proxy), of the proxy
#: (towards the client), or both
PLACEMENTS = ("client-egress", "proxy-egress", "both")


def directions(link: LinkParams, placement: str) -> tuple[LinkParams | None,
                                                          LinkParams | None]:
    """(client to proxy, proxy to client) impairment for `placement` (None: a plain wire)."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    return (link if placement in ("client-egress", "both") else None,
            link if placement in ("proxy-egress", "both") else None)


@contextlib.contextmanager
def masque_topology(link: LinkParams, emulation: str = "auto",
                    placement: str = "both") -> Iterator[EmulatedLink]:
    """Client, proxy and target namespaces; the emulated link (for its mode) while inside."""
    to_proxy, to_client = directions(link, placement)
    with EmulatedLink(CLIENT_NS, CLIENT_ADDR, PROXY_NS, PROXY_ADDR, to_proxy, to_client,
                      prefer=emulation, static_arp=True) as em, \
            PlainLink(PROXY_NS, PROXY_TARGET_SIDE, TARGET_NS, TARGET_ADDR):
        yield em


def run_workload(outer: str, inner: str, workload_args: Sequence[str],
                 timeout: float, congestion_control: str = "reno") -> dict[str, Any]:
    """Target, proxy (outer scheduler `outer`, outer congestion controller
    `congestion_control` at both ends) and the client workload; its JSON result."""
    proxy_ip, target_ip = PROXY_ADDR.split("/")[0], TARGET_ADDR.split("/")[0]
    with NamespaceProcess(TARGET_NS, python_module(
            "hostagent.masque.target_cli", "--quic", f"{target_ip}:{TARGET_PORT}",
            "--scheduler", inner), ready=r"\bready\b", name="mp-target"), \
        NamespaceProcess(PROXY_NS, python_module(
            "hostagent.masque.proxy_cli", "--listen", f"{proxy_ip}:{PROXY_PORT}",
            "--scheduler", outer, "--allow", TARGET_NET, "--congestion-control",
            congestion_control), ready=r"serving CONNECT-UDP",
            name="mp-proxy") as proxy:
        client = NamespaceProcess(CLIENT_NS, python_module(
            "hostagent.masque.workload", "--proxy", f"{proxy_ip}:{PROXY_PORT}",
            "--target", f"{target_ip}:{TARGET_PORT}", "--outer-scheduler", outer,
            "--inner-scheduler", inner, "--timeout", str(timeout), "--congestion-control",
            congestion_control, *workload_args), capture_stdout=True, name="workload")
        client.start()
        out = client.communicate(timeout=timeout * 2 + 60)
        if client.poll() != 0:
            raise ProcessFailed(f"workload failed ({client.poll()}): "
                                f"{' | '.join(list(client.output)[-5:])}")
        if proxy.poll() is not None:
            raise ProcessFailed(f"mp-proxy died: {' | '.join(list(proxy.output)[-5:])}")
    return json.loads(out)



# -- the experiments' choice of where to run --------------------------------------------------

VIA = ("namespaces", "switch")
FASTPATH = {"off": (False,), "on": (True,), "both": (False, True)}


def add_via_arguments(parser: argparse.ArgumentParser) -> None:
    """--via and --fastpath, as both MASQUE experiments take them."""
    parser.add_argument("--via", choices=VIA, default="namespaces",
                        help="namespaces: three namespaces (default); switch: masque_proxy.py's "
                        "Mininet topology through the P4 switch (root and Mininet)")
    parser.add_argument("--fastpath", choices=list(FASTPATH), default=None,
                        help="with --via switch: run each variant with the fast path off, on, "
                        "or both (default both)")


@dataclass(frozen=True)
class Variant:
    """One run of an experiment: its label, the outer scheduler, the fast path."""

    label: str
    outer: str
    fastpath: bool | None  # None: not through the switch


def plan_variants(parser: argparse.ArgumentParser, args: argparse.Namespace,
                  schedulers: list[str]) -> list[Variant]:
    """The runs of `schedulers` for --via/--fastpath; a parser error on a bad combination."""
    if args.via != "switch":
        if args.fastpath is not None:
            parser.error("--fastpath goes with --via switch")
        return [Variant(s, s, None) for s in schedulers]
    return [Variant(f"{s}, fast path {'on' if fp else 'off'}", s, fp)
            for s in schedulers for fp in FASTPATH[args.fastpath or "both"]]


def parse_plan(parser: argparse.ArgumentParser,
               args: argparse.Namespace) -> tuple[list[Variant], LinkParams]:
    """The runs of --variants/--via/--fastpath and the --link impairment, with
    --inner-scheduler checked too; a parser error (exit 2) on a bad one."""
    from hostagent.schedulers import SCHEDULERS

    schedulers = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in [*schedulers, args.inner_scheduler] if v not in SCHEDULERS]
    if bad or not schedulers:
        parser.error(f"unknown scheduler(s) {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(SCHEDULERS)}")
    try:
        link = parse_spec(args.link)
    except ValueError as exc:
        parser.error(f"--link: {exc}")
    return plan_variants(parser, args, schedulers), link


def check_host(via: str, prog: str) -> bool:
    """Whether this host can run `via`; if not, the reason on stderr."""
    caps = ((capabilities.root(), capabilities.mininet()) if via == "switch"
            else (capabilities.netns(),))
    for cap in caps:
        if not cap.available:
            print(f"{prog}: {cap.detail}", file=sys.stderr)
            return False
    return True


class ExperimentSite:
    """Runs the workload for a `Variant` where --via says; `mode` is how the link is emulated.
    The outer connection's ends run `congestion_control` (a `hostagent.congestion` name)."""

    def __init__(self, via: str, link: LinkParams, emulation: str,
                 placement: str = "both", congestion_control: str = "reno") -> None:
        directions(link, placement)  # a bad placement fails here, before anything is built
        self.via, self.link, self.emulation, self.placement = via, link, emulation, placement
        self.congestion_control = congestion_control
        self.mode = "userspace"
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ExperimentSite:
        if self.via == "namespaces":
            link = self._stack.enter_context(
                masque_topology(self.link, self.emulation, self.placement))
            self.mode = link.mode or "plain"  # started links always have one
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self, variant: Variant, inner: str, workload_args: Sequence[str],
            timeout: float) -> dict[str, Any]:
        """One run: the workload's JSON; through the switch also `proxy_cpu_s`."""
        if variant.fastpath is None:
            return run_workload(variant.outer, inner, workload_args, timeout,
                                self.congestion_control)
        from topologies.masque_plan import QUIC_PORT
        from topologies.masque_topology import MasqueTopology

        with MasqueTopology(link=self.link, link_mode=self.emulation,
                            proxy_args=["--scheduler", variant.outer, "--congestion-control",
                                        self.congestion_control],
                            target_args=["--scheduler", inner]) as topo:
            self.mode = topo.link_how
            cpu = topo.cpu_seconds("mp-proxy")
            out = topo.run_on("client", python_module(
                "hostagent.masque.workload", "--proxy", f"{topo.proxy.ip}:{QUIC_PORT}",
                "--target", f"{topo.hosts[2].ip}:{QUIC_PORT}", "--outer-scheduler",
                variant.outer, "--inner-scheduler", inner, "--timeout", str(timeout),
                "--congestion-control", self.congestion_control,
                *workload_args, *(["--fastpath"] if variant.fastpath else [])),
                timeout=timeout * 2 + 60, label="workload")
            result: dict[str, Any] = json.loads(out)
            result["proxy_cpu_s"] = topo.cpu_seconds("mp-proxy") - cpu
        return result


def proxy_cost(result: dict[str, Any]) -> dict[str, Any]:
    """Tunnels on the fast path, MB echoed (both ways) and the proxy's CPU s per MB."""
    records = result["records"]
    mb = 2 * sum(r["size"] for r in records if r["latency"] is not None) / 1e6
    cpu = result.get("proxy_cpu_s")
    return {"fastpath_streams": sum(1 for r in records if r.get("fastpath")),
            "mb_echoed": mb, "proxy_cpu_s": cpu,
            "proxy_cpu_s_per_mb": cpu / mb if cpu is not None and mb else None}


def format_cost(runs: dict[str, dict[str, Any]], unit: str = "streams") -> str:
    """The proxy-cost table of runs through the switch ('' when none went through it)."""
    rows = [(v, r) for v, r in runs.items() if r.get("proxy_cpu_s") is not None]
    if not rows:
        return ""
    header = (f"{'variant':<22} {'on fast path':>13} {'MB echoed':>9} {'proxy CPU s':>11} "
              f"{'CPU s/MB':>9}")
    lines = [header, "-" * len(header)]
    for variant, r in rows:
        per_mb = "-" if r["proxy_cpu_s_per_mb"] is None else f"{r['proxy_cpu_s_per_mb']:.3f}"
        lines.append(f"{variant:<22} {r['fastpath_streams']:>6} {unit:<6} {r['mb_echoed']:>9.2f} "
                     f"{r['proxy_cpu_s']:>11.2f} {per_mb:>9}")
    return "\n".join(lines)


Summarizer = Callable[[dict[str, Any]], dict[str, Any]]


def run_plan(site: ExperimentSite, plan: Sequence[Variant], inner: str,
             workload_args: Sequence[str], timeout: float,
             summarize: Summarizer) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every variant of `plan` at `site`, with a progress line each: per variant label the
    summary (`summarize` of the workload's JSON, plus the proxy's cost) and the raw JSON."""
    runs: dict[str, dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    for n, variant in enumerate(plan, start=1):
        t0 = time.monotonic()
        print(f"[{n}/{len(plan)}] outer {variant.label} ...", end=" ", flush=True)
        raw[variant.label] = site.run(variant, inner, workload_args, timeout)
        runs[variant.label] = {**summarize(raw[variant.label]), **proxy_cost(raw[variant.label])}
        print(f"{time.monotonic() - t0:.1f} s", flush=True)
    return runs, raw


def print_report(table: str, runs: dict[str, dict[str, Any]], unit: str,
                 seed_result: str) -> None:
    """The experiment's table, the proxy-cost table of runs through the switch, the seed's."""
    print()
    print(table)
    cost = format_cost(runs, unit)
    if cost:
        print(f"\n{cost}\n(on the fast path the switch carries the tunnels' packets: the "
              "outer scheduler at the proxy and client has no say over them)")
    print(f"\n{seed_result}")


def save_results(out_dir: Path, experiment: str, args: argparse.Namespace, link: LinkParams,
                 site: ExperimentSite, seed_result: str, settings: dict[str, Any],
                 runs: dict[str, dict[str, Any]], raw: dict[str, Any]) -> Path:
    """Write `out_dir/NAME.json` (meta, summary, raw), NAME being `experiment` with
    `_switch` for --via switch; the JSON's path."""
    name = experiment + ("_switch" if args.via == "switch" else "")
    meta = {"experiment": name, "via": args.via, "link": format_spec(link),
            "emulation": site.mode, **settings, "machine": platform.node(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seed_result": seed_result}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, "summary": runs, "raw": raw}, indent=1))
    return path
