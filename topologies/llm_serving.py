"""LLM serving through a P4 switch in Mininet: the LLM front-end and back-end on their hosts.

    sudo .venv/bin/python topologies/llm_serving.py [--cli] [--target soft|bmv2] \\
        [--link "rate=5mbit,delay=50ms,loss=0.5%"] [--scheduler edf] [--requests 30]
    sudo .venv/bin/python topologies/llm_serving.py --cleanup

    frontend 10.0.11.10 --port 11--+   P4 switch mls1    +--port 12-- backend 10.0.12.10
      (--link: emulated; mpe11     |   (P4Switch)        |   (hostagent.llm.backend :4433)
       in between without netem)   +---------------------+
    root namespace: mp-controller (routes; northbound 127.0.0.1), this script

Built like masque_proxy.py from topologies.mininet_p4 (P4Switch, host set-up, access
links with netem or the userspace emulator node). Without --cli it runs the back-end on
`backend`, one front-end run on `frontend` (the seed thesis's request mix, one burst) and
prints the per-class table; with --cli it drops into Mininet's CLI with the back-end
running. The names (switch mls1, emulator mpe11, hosts, ports 11/12, PID file) differ
from masque_proxy.py's, so the two never clash. No per-class ranks are installed: the
front-end does not mark its packets (no DSCP), so the switch cannot tell the classes
apart; every packet gets the controller's default rank.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `python topologies/llm_serving.py`
    sys.path.insert(0, str(REPO))

from bmv2 import launcher  # noqa: E402 - needs the path above
from topologies import capabilities  # noqa: E402
from topologies.linkemu import LinkParams, parse_spec  # noqa: E402
from topologies.masque_proxy import (  # noqa: E402 - shared helpers, not duplicated
    HostPlan,
    _interrupt,
    _raise_exit,
    _same_process,
    _start_time,
    tool,
)

PROG = "llm_serving"
SWITCH_NAME = "mls1"
FRONTEND_PORT, BACKEND_PORT = 11, 12  # masque_proxy.py uses ports 1..10 (emulator mpe1)
EMULATOR_NAME = f"mpe{FRONTEND_PORT}"
#: root-namespace interfaces this topology makes (the switch's ports)
ROOT_LINK_PREFIXES = (f"{SWITCH_NAME}-eth",)
STATE_FILE = Path("/run/masque-pifo-mininet-llm.json")
WORKDIR_PREFIX = "mp-mininet-llm-"
LLM_PORT = 4433
DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
CONTROLLER_ELECTION_ID = 10

CONFIG = """
state = "state.sqlite"
northbound = "{northbound}"
sched_mode = "sppifo"
default_rank = 30000

[[switch]]
name = "{switch}"
address = "{grpc}"
election_id = {election}

# required by the controller; unused here (no proxy, nothing is sent to this address)
[fastpath]
address = "10.0.{backend_port}.1"
proxy_addr = "{backend}"
proxy_ports = [40000, 40999]
miss = "slow-path"
slow_path_port = {backend_port}
slow_path_mac = "{backend_mac}"

{routes}"""


def plan_hosts() -> list[HostPlan]:
    """frontend on port 11, backend on port 12."""
    return [HostPlan("frontend", FRONTEND_PORT), HostPlan("backend", BACKEND_PORT)]


def controller_config(hosts: list[HostPlan], grpc_addr: str, northbound: str) -> str:
    """The mp-controller TOML: the pipeline and a route to each host."""
    routes = "".join(f'[[route]]\nprefix = "{h.subnet}"\nport = {h.port}\n'
                     f'src_mac = "{h.switch_mac}"\ndst_mac = "{h.mac}"\n\n' for h in hosts)
    backend = hosts[1]
    return CONFIG.format(northbound=northbound, switch=SWITCH_NAME, grpc=grpc_addr,
                         election=CONTROLLER_ELECTION_ID, backend_port=backend.port,
                         backend=backend.ip, backend_mac=backend.mac, routes=routes)


class _Outcome:
    """A request result read back from the front-end's JSON (for report.summarize)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.traffic_class = row["traffic_class"]
        self.latency = row["latency"]
        self.on_time = row["on_time"]


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """hostagent.llm.report.summarize of the front-end's JSON rows."""
    from hostagent.llm.report import summarize

    return summarize(_Outcome(r) for r in rows)


class LlmTopology:
    """The topology as a context manager: `start()` builds and starts it, `stop()` removes it.

    `target` "soft" or "bmv2"; `link` the impairment of the front-end's access link
    (both directions; None: a plain link); `scheduler` the back-end's stream scheduler.
    """

    def __init__(self, target: str = "soft", link: LinkParams | None = None,
                 scheduler: str = "edf", link_mode: str = "auto") -> None:
        self.target = target
        self.hosts = plan_hosts()
        self.link = link
        self.link_mode = link_mode
        self.link_how = "plain"
        self.scheduler = scheduler
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        self.net: Any = None
        self.switch: Any = None
        self.processes: dict[str, Any] = {}  # label -> NamespaceProcess
        self._stopped = False

    def __enter__(self) -> LlmTopology:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def frontend(self) -> HostPlan:
        """The front-end host's plan."""
        return self.hosts[0]

    @property
    def backend(self) -> HostPlan:
        """The back-end host's plan."""
        return self.hosts[1]

    def start(self) -> None:
        """Build the network, start the switch, the controller and the back-end."""
        from mininet.net import Mininet

        from topologies import mininet_p4 as mp4

        self._record()
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        net = self.net = Mininet(controller=None, build=False, autoSetMacs=False)
        self.switch = net.addSwitch(SWITCH_NAME, cls=mp4.P4Switch, target=self.target,
                                    log_file=self.workdir / "switch.log")
        nodes = {h.name: net.addHost(h.name, ip=f"{h.ip}/24", mac=h.mac) for h in self.hosts}
        mode = None if self.link_mode == "auto" else self.link_mode
        self.link_how = mp4.add_access_link(net, nodes["frontend"], self.switch,
                                            self.frontend.port, self.link, self.link, mode)
        mp4.add_access_link(net, nodes["backend"], self.switch, self.backend.port)
        net.build()
        self._record()
        net.start()
        self._record()
        for h in self.hosts:
            mp4.configure_host(nodes[h.name], h.gateway, h.switch_mac)
        conf = self.workdir / "controller.toml"
        northbound = f"127.0.0.1:{launcher.free_tcp_port()}"
        conf.write_text(controller_config(self.hosts, self.switch.grpc_addr, northbound))
        self._run("mp-controller", None, [*tool("mp-controller"), "--config", str(conf),
                                          "--log-level", "info"], r"pipeline pushed", 60)
        self._run("llm-backend", nodes["backend"], [
            sys.executable, "-m", "hostagent.llm.backend", "--listen",
            f"{self.backend.ip}:{LLM_PORT}", "--scheduler", self.scheduler],
            r"serving QUIC", 30)

    def _run(self, label: str, node: Any, argv: list[str], ready: str | None,
             timeout: float, **kwargs: Any) -> Any:
        from topologies import mininet_p4 as mp4
        from topologies.nsprocess import NamespaceProcess

        proc = NamespaceProcess(None, mp4.mnexec_argv(node, argv), ready=ready,
                                ready_timeout=timeout, name=label, **kwargs)
        self.processes[label] = proc
        try:
            proc.start()
        finally:
            self._record()
        return proc

    def node(self, name: str) -> Any:
        """The Mininet node called `name`."""
        return self.net[name]

    def ping_all(self) -> float:
        """Mininet's pingall through the switch; the share lost, in %."""
        return float(self.net.pingAll(timeout="2"))

    def run_frontend(self, requests: int = 30, seed: int = 1, transport: str = "quic",
                     timeout: float = 60.0) -> list[dict[str, Any]]:
        """One front-end run on `frontend` against the back-end; its per-request rows."""
        argv = [sys.executable, "-m", "hostagent.llm.frontend", "--connect",
                f"{self.backend.ip}:{LLM_PORT}", "--transport", transport, "--scheduler",
                self.scheduler, "--requests", str(requests), "--seed", str(seed),
                "--timeout", str(timeout), "--json", "-"]
        front = self._run("llm-frontend", self.node("frontend"), argv, None, 0,
                          capture_stdout=True)
        try:
            out = front.communicate(timeout=timeout + 30)
            code = front.poll()
        finally:
            front.stop()
        if code != 0:
            raise RuntimeError(f"front-end failed ({code}): {' | '.join(list(front.output)[-5:])}")
        return json.loads(out)

    def pids(self) -> dict[str, int]:
        """Every process this topology runs: its daemons, emulator, switch and node shells."""
        from topologies.mininet_p4 import topology_pids
        return topology_pids(self.processes, self.net)

    def netns_inodes(self) -> set[int]:
        """The network namespaces of the Mininet nodes that have one (by inode)."""
        from topologies.mininet_p4 import topology_netns_inodes
        return topology_netns_inodes(self.net)

    def _record(self) -> None:
        """Write STATE_FILE: our PID, every PID we started (with start times), the workdir."""
        pids = {label: [pid, _start_time(pid)] for label, pid in self.pids().items()}
        STATE_FILE.write_text(json.dumps({"owner": [os.getpid(), _start_time(os.getpid())],
                                          "pids": pids, "workdir": str(self.workdir)}))

    def stop(self) -> list[str]:
        """Stop everything by PID, remove every link and namespace; idempotent; the errors."""
        if self._stopped:
            return []
        self._stopped = True
        errors: list[str] = []

        def attempt(what: str, fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - go on cleaning up
                errors.append(f"{what}: {exc}")

        for label in sorted(self.processes, key=lambda x: (x == "mp-controller", x)):
            attempt(f"stopping {label}", self.processes[label].stop)
        if self.net is not None:
            for sw in self.net.switches:
                proc = getattr(sw, "process", None)
                if proc is not None:
                    attempt(f"stopping {sw.name}", proc.stop)
            for node in [*self.net.hosts, *self.net.switches]:
                if node.shell is not None and node.waiting:
                    attempt(f"interrupting {node.name}", _interrupt, node)
            attempt("stopping Mininet", self.net.stop)
        attempt("deleting leftover links", _delete_root_links)
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()
        for error in errors:
            print(f"{PROG}: cleanup: {error}", file=sys.stderr)
        return errors


def _delete_root_links() -> None:
    from topologies import mininet_p4 as mp4

    for ifname in mp4.root_links(ROOT_LINK_PREFIXES):
        subprocess.run(["ip", "link", "del", ifname], capture_output=True)


def cleanup_leftovers(mininet_too: bool = True) -> list[str]:
    """Remove what a crashed run left (PIDs from STATE_FILE checked against their start
    times, our switch links, the work directory); with `mininet_too` also Mininet's mn -c."""
    done: list[str] = []
    state: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        state = json.loads(STATE_FILE.read_text())
    owner = state.get("owner")
    if owner and owner[0] != os.getpid() and _same_process(owner[0], owner[1]):
        raise RuntimeError(f"a {PROG} topology is still running (pid {owner[0]}); stop it "
                           "first (Ctrl-C or exit its CLI)")
    pids = state.get("pids", {})
    for label, (pid, started) in sorted(pids.items()):
        if _same_process(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                done.append(f"sent SIGTERM to {label} (pid {pid})")
    deadline = time.monotonic() + 5
    for pid, started in pids.values():
        while _same_process(pid, started):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    from topologies import mininet_p4 as mp4

    for ifname in mp4.root_links(ROOT_LINK_PREFIXES):
        subprocess.run(["ip", "link", "del", ifname], capture_output=True)
        done.append(f"deleted link {ifname}")
    workdir = state.get("workdir")
    if workdir and Path(workdir).name.startswith(WORKDIR_PREFIX):
        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        STATE_FILE.unlink()
        done.append(f"removed {STATE_FILE}")
    if mininet_too:
        from mininet.clean import cleanup

        cleanup()
        done.append("ran Mininet's cleanup (mn -c)")
    return done


def cli_help(topo: LlmTopology) -> str:
    """What to try at Mininet's CLI."""
    b = f"{topo.backend.ip}:{LLM_PORT}"
    return f"""
*** The LLM serving topology is up; the back-end ({topo.scheduler}) listens on {b}. Try:
  pingall
  frontend ping -c 3 {topo.backend.ip}
  frontend python -m hostagent.llm.frontend --connect {b} --scheduler {topo.scheduler} \
--requests 30
  frontend python -m hostagent.llm.frontend --connect {b} --transport tcp-n --requests 30
  links / net / dump
  exit   (or Ctrl-D: everything is stopped and removed)
P4Runtime {topo.switch.grpc_addr}; switch log {topo.workdir / 'switch.log'}
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    from hostagent.schedulers import SCHEDULERS

    parser = argparse.ArgumentParser(
        prog=PROG, description="LLM front-end and back-end through a P4 switch in Mininet: "
        "one run with the per-class table, or Mininet's CLI.",
        epilog="run as root with the project's venv: sudo .venv/bin/python "
        "topologies/llm_serving.py")
    parser.add_argument("--cli", action="store_true",
                        help="bring everything up and open Mininet's CLI instead of the run")
    parser.add_argument("--target", choices=["soft", "bmv2"], default="soft",
                        help="P4 target: soft (the built-in target, default) or bmv2")
    parser.add_argument("--link", metavar="SPEC", default=DEFAULT_LINK,
                        help=f"the front-end's access link, both directions (default "
                        f"{DEFAULT_LINK!r}; 'none': a plain link)".replace("%", "%%"))
    parser.add_argument("--link-mode", choices=["auto", "netem", "userspace"], default="auto",
                        help="how --link is emulated (auto: netem where the kernel has it)")
    parser.add_argument("--scheduler", choices=list(SCHEDULERS), default="edf",
                        help="stream scheduler at both ends (default edf)")
    parser.add_argument("--transport", choices=["quic", "tcp-n", "tcp-1"], default="quic",
                        help="front-end transport (default quic)")
    parser.add_argument("--requests", type=int, default=30, help="requests of the run (30)")
    parser.add_argument("--seed", type=int, default=1, help="request mix seed (1)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds the front-end run may take (60)")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove leftovers of a crashed run (ours, then Mininet's mn -c)")
    parser.add_argument("-v", "--verbose", action="store_true", help="Mininet's info log")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, check the host, run once or open the CLI; clean up whatever happens."""
    try:
        import finsy  # noqa: F401 - the project's dependencies, from its venv
    except ModuleNotFoundError:
        print(f"{PROG}: the project's packages are missing: run it with the venv's python "
              "(sudo .venv/bin/python topologies/llm_serving.py)", file=sys.stderr)
        return 1
    parser = build_parser()
    args = parser.parse_args(argv)
    link = None
    if args.link and args.link != "none":
        try:
            link = parse_spec(args.link)
        except ValueError as exc:
            parser.error(f"--link: {exc}")
    if args.requests < 1:
        parser.error("--requests must be >= 1")
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"{PROG}: {cap.detail}", file=sys.stderr)
            return 1
    if args.target == "bmv2" and not capabilities.bmv2().available:
        print(f"{PROG}: --target bmv2: {capabilities.bmv2().detail}", file=sys.stderr)
        return 1
    from mininet.cli import CLI
    from mininet.log import setLogLevel

    if args.cleanup:
        try:
            for line in cleanup_leftovers():
                print(f"{PROG}: {line}")
        except RuntimeError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        return 0
    if STATE_FILE.exists():
        try:
            leftovers = cleanup_leftovers(mininet_too=False)
        except RuntimeError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        if leftovers:
            print(f"{PROG}: removed leftovers of an earlier run: " + "; ".join(leftovers))
    setLogLevel("info" if args.verbose else "output")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    topo = LlmTopology(target=args.target, link=link, scheduler=args.scheduler,
                       link_mode=args.link_mode)
    code = 0
    try:
        started = time.monotonic()
        topo.start()
        print(f"*** topology up in {time.monotonic() - started:.1f} s: {args.target} target, "
              f"back-end {topo.backend.ip}:{LLM_PORT} ({args.scheduler}); front-end link: "
              f"{topo.link_how}" + (f" ({args.link})" if link else "")
              + "; no per-class ranks (the front-end sets no DSCP)", flush=True)
        if args.cli:
            print(cli_help(topo), flush=True)
            CLI(topo.net)
        else:
            from hostagent.llm.report import format_table

            lost = topo.ping_all()
            t0 = time.monotonic()
            rows = topo.run_frontend(args.requests, args.seed, args.transport, args.timeout)
            summary = summarize_rows(rows)
            print(f"\n*** {args.requests} requests ({args.transport}/{args.scheduler}, seed "
                  f"{args.seed}) in {time.monotonic() - t0:.1f} s")
            print(format_table({f"{args.transport}/{args.scheduler}": summary}))
            done = sum(row["finished"] for row in summary.values())
            ok = lost == 0 and done == args.requests
            print(f"\n*** run {'OK' if ok else 'INCOMPLETE'}: ping loss {lost:g}%, "
                  f"{done}/{args.requests} requests answered", flush=True)
            code = 0 if ok else 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted, cleaning up", file=sys.stderr)
        code = 130
    except SystemExit as exc:
        print(f"\n{PROG}: stopped by a signal, cleaning up", file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - one line for people, then the cleanup
        print(f"{PROG}: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            print("*** stopping and removing everything", flush=True)
            if topo.stop():
                code = code or 1
        finally:
            signal.signal(signal.SIGINT, previous)
    return code


if __name__ == "__main__":
    sys.exit(main())
