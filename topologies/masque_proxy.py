"""The MASQUE proxy topology in Mininet: client, proxy and targets on a P4 switch, fast path on.

    sudo .venv/bin/python topologies/masque_proxy.py [--cli] [--target soft|bmv2] \\
        [--targets N] [--link "rate=5mbit,delay=50ms,loss=1%"] [--link-mode auto|netem|userspace] \\
        [--bottleneck 5mbit]
    sudo .venv/bin/python topologies/masque_proxy.py --cleanup

    client 10.0.1.10 --port 1--+                     +--port 3-- t1 10.0.3.10 (mp-target)
      (--link: emulated,       |   P4 switch mps1     |   ...
       mpe1 in between where   |   fast path          +--port N+2-- tN 10.0.N+2.10
       there is no netem)      |   10.0.2.1:4434
    proxy 10.0.2.10 --port 2---+
      (mp-proxy --controller)
      | proxy-mgmt 192.168.252.2/30 -- mpmn-mgmt 192.168.252.1/30 (root namespace)
    root namespace: mp-controller (northbound 192.168.252.1, P4Runtime 127.0.0.1), this script

Without --cli it runs one demonstration (mp-client with --fastpath from the client
through the switch to t1, echoing a few messages) and prints what happened; with
--cli it drops into Mininet's CLI. Everything it started (Mininet's nodes and links,
the switch, the controller, the proxy, the targets, link emulators) is removed on
exit, on Ctrl-C, on SIGTERM and after an error; `--cleanup` removes what a crashed
run left behind, using the PIDs it recorded in STATE_FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `python topologies/masque_proxy.py`
    sys.path.insert(0, str(REPO))

from bmv2 import launcher  # noqa: E402 - needs the path above
from hostagent.certs import RunPki, write_run_pki  # noqa: E402 - needs the path above
from topologies import capabilities  # noqa: E402 - needs the path above
from topologies.linkemu import (  # noqa: E402
    LinkParams,
    netem_unavailable_reason,
    parse_rate,
    parse_spec,
)

PROG = "masque_proxy"
SWITCH_NAME = "mps1"
MGMT_ROOT_IF, MGMT_PROXY_IF = "mpmn-mgmt", "proxy-mgmt"
MGMT_ROOT, MGMT_PROXY = "192.168.252.1", "192.168.252.2"
#: root-namespace interfaces this topology makes (switch ports, the management veth)
ROOT_LINK_PREFIXES = (f"{SWITCH_NAME}-eth", MGMT_ROOT_IF)
STATE_FILE = Path("/run/masque-pifo-mininet.json")
#: held (flock) while a topology is up: one at a time, since the names are fixed
LOCK_FILE = Path("/run/masque-pifo-mininet.lock")
CLIENT_PORT, PROXY_PORT = 1, 2
MAX_TARGETS = 8
FASTPATH_ADDR = "10.0.2.1"
PROXY_PORTS = (40000, 40999)
PROXY_EPHEMERAL = "50000 60999"  # the proxy's own sockets stay out of PROXY_PORTS
QUIC_PORT, UDP_PORT = 4433, 4434
PROXY_TOKEN, OPS_TOKEN = "proxy-token", "mininet-ops"
CONTROLLER_ELECTION_ID, READER_ELECTION_ID = 10, 1

CONFIG = """
state = "state.sqlite"
northbound = "{northbound}"
sched_mode = "sppifo"
default_rank = 30000

[tls]
cert = "pki/server.pem"
key = "pki/server.key"
ca = "pki/ca.pem"

[[switch]]
name = "{switch}"
address = "{grpc}"
election_id = {election}
tls = {{ ca = "pki/ca.pem", cert = "pki/client.pem", key = "pki/client.key" }}

[fastpath]
address = "{fastpath}"
proxy_addr = "{proxy}"
proxy_ports = [{low}, {high}]
miss = "slow-path"
slow_path_port = {proxy_port}
slow_path_mac = "{proxy_mac}"

{routes}
[[class]]
name = "ops"
min_rank = 0
rank = 4096

[[client]]
name = "proxy"
token = "{proxy_token}"
address = "{mgmt_proxy}"
class = "ops"
operator = true

[[client]]
name = "operator"
token = "{ops_token}"
address = "{mgmt_root}"
class = "ops"
operator = true
"""

COMMANDS = {"mp-client": "hostagent.masque.client_cli", "mp-proxy": "hostagent.masque.proxy_cli",
            "mp-target": "hostagent.masque.target_cli", "mp-ctl": "controller.ctl",
            "mp-controller": "controller.daemon"}


def tool(name: str) -> list[str]:
    """argv of console script `name` from this interpreter's venv, else `python -m` its module."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", COMMANDS[name]]


@dataclass(frozen=True)
class HostPlan:
    """One host of the topology on switch port `port`: 10.0.<port>.10/24, gateway .1."""

    name: str
    port: int

    @property
    def ip(self) -> str:
        """The host's address."""
        return f"10.0.{self.port}.10"

    @property
    def subnet(self) -> str:
        """The host's /24, routed to its port."""
        return f"10.0.{self.port}.0/24"

    @property
    def gateway(self) -> str:
        """A made-up next hop (.1): only its static ARP entry at the switch's MAC matters."""
        return f"10.0.{self.port}.1"

    @property
    def mac(self) -> str:
        """The host's MAC, the route's destination MAC."""
        return f"02:00:00:00:{self.port:02x}:0a"

    @property
    def switch_mac(self) -> str:
        """The switch's MAC on this port (the route's source MAC)."""
        return f"02:aa:00:00:00:{self.port:02x}"


def tls_args(pki: RunPki) -> list[str]:
    """The --tls-* options of a client of the run's gRPC servers (mutual TLS)."""
    return ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
            "--tls-key", str(pki.client_key)]


def tls_environment(prefix: str, pki: RunPki) -> dict[str, str]:
    """The same as ${prefix}_TLS_CA/_CERT/_KEY, for the shells of the hosts."""
    return {f"{prefix}_TLS_CA": str(pki.ca), f"{prefix}_TLS_CERT": str(pki.client_cert),
            f"{prefix}_TLS_KEY": str(pki.client_key)}


def plan_hosts(targets: int) -> list[HostPlan]:
    """client on port 1, proxy on port 2, t1..tN on ports 3..N+2."""
    return ([HostPlan("client", CLIENT_PORT), HostPlan("proxy", PROXY_PORT)]
            + [HostPlan(f"t{i}", PROXY_PORT + i) for i in range(1, targets + 1)])


def controller_config(hosts: list[HostPlan], grpc_addr: str, northbound: str) -> str:
    """The mp-controller TOML: routes to every host, the fast path, the proxy as operator."""
    routes = "".join(f'[[route]]\nprefix = "{h.subnet}"\nport = {h.port}\n'
                     f'src_mac = "{h.switch_mac}"\ndst_mac = "{h.mac}"\n\n' for h in hosts)
    proxy = next(h for h in hosts if h.name == "proxy")
    return CONFIG.format(northbound=northbound, switch=SWITCH_NAME, grpc=grpc_addr,
                         election=CONTROLLER_ELECTION_ID, fastpath=FASTPATH_ADDR, proxy=proxy.ip,
                         low=PROXY_PORTS[0], high=PROXY_PORTS[1], proxy_port=proxy.port,
                         proxy_mac=proxy.mac, routes=routes, proxy_token=PROXY_TOKEN,
                         mgmt_proxy=MGMT_PROXY, ops_token=OPS_TOKEN, mgmt_root=MGMT_ROOT)


def _start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (guards against a reused PID), None if it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return None


def _same_process(pid: int, started: int | None) -> bool:
    """Whether `pid` still runs (not a zombie) and is the process that started at `started`."""
    from topologies.mininet_p4 import process_alive

    return started is not None and _start_time(pid) == started and process_alive(pid)


@dataclass
class DemoResult:
    """What the demonstration saw: the client's lines, the fast path, the switch's counters."""

    exit_code: int
    lines: list[str]
    granted: bool
    fastpath: str
    rtts_ms: list[float]
    shims_sent: int
    shims_received: int
    decap: tuple[int, int] = (0, 0)   # packets, bytes (last read while the flow was open)
    encap: tuple[int, int] = (0, 0)
    flow_reads: int = 0               # reads that found the flow's entries
    stats: dict[str, Any] = field(default_factory=dict)


class MasqueTopology:
    """The topology as a context manager: `start()` builds and starts it, `stop()` removes it.

    `target` is "soft" (built-in) or "bmv2"; `targets` the number of target hosts;
    `link` the impairment of the client's access link (both directions; None: a
    plain link) and `host_links` that of any host's access link by host name
    ("client", "proxy", "t1".."tN"); `link_mode` "auto", "netem" or "userspace"
    (one mode for every impaired link). `bottleneck_bps`
    shapes the switch's egress ports towards the targets (built-in target only), so
    that the switch's queues, and its scheduling mode, decide who waits.
    `proxy_args` and `target_args` are extra flags for mp-proxy and mp-target
    (e.g. ``["--scheduler", "fcfs"]``). Only one topology runs at a time (its names
    are fixed): `start()` waits up to `lock_wait` seconds for another to finish.
    """

    def __init__(self, target: str = "soft", targets: int = 1, link: LinkParams | None = None,
                 link_mode: str = "auto", workdir: Path | None = None,
                 bottleneck_bps: int | None = None, proxy_args: list[str] | None = None,
                 target_args: list[str] | None = None, lock_wait: float = 900.0,
                 host_links: dict[str, LinkParams] | None = None) -> None:
        if not 1 <= targets <= MAX_TARGETS:
            raise ValueError(f"targets must be 1..{MAX_TARGETS}, got {targets}")
        if link_mode not in ("auto", "netem", "userspace"):
            raise ValueError(f"link_mode must be auto, netem or userspace, got {link_mode!r}")
        if bottleneck_bps is not None and target != "soft":
            raise ValueError("a bottleneck needs the built-in target (--target soft): BMv2 "
                             "has no port-level shaper")
        if bottleneck_bps is not None and bottleneck_bps <= 0:
            raise ValueError(f"bottleneck_bps must be > 0, got {bottleneck_bps}")
        self.lock_wait = lock_wait
        self._lock_fd: int | None = None
        self.bottleneck_bps = bottleneck_bps
        self.proxy_args = list(proxy_args or [])
        self.target_args = list(target_args or [])
        self.target = target
        self.hosts = plan_hosts(targets)
        self.links = dict(host_links or {})
        unknown = sorted(set(self.links) - {h.name for h in self.hosts})
        if unknown:
            raise ValueError(f"no host {', '.join(unknown)} in this topology (hosts: "
                             f"{', '.join(h.name for h in self.hosts)})")
        if link is not None:
            if "client" in self.links:
                raise ValueError("the client's link is given twice (link and host_links)")
            self.links["client"] = link
        self.link = self.links.get("client")
        self.link_mode = link_mode
        self.link_how = "plain"
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mp-mininet-"))
        self.net: Any = None
        self.switch: Any = None
        self.northbound = ""
        self.processes: dict[str, Any] = {}  # label -> NamespaceProcess
        #: the last lines of stderr of the last `run_on` program
        self.last_stderr: list[str] = []
        self._mgmt_made = False
        self._stopped = False

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> MasqueTopology:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Build the Mininet network, start the switch, controller, proxy and targets."""
        from mininet.net import Mininet

        from topologies import mininet_p4 as mp4

        self._lock()
        if STATE_FILE.exists():  # a crashed run's leftovers (its owner is gone: we hold the lock)
            for line in cleanup_leftovers(mininet_too=False):
                print(f"{PROG}: leftovers of an earlier run: {line}", file=sys.stderr)
        self._record()
        self.northbound = f"{MGMT_ROOT}:{launcher.free_tcp_port()}"
        # mutual TLS on every gRPC link (northbound API, P4Runtime), with this run's PKI
        self.pki = write_run_pki(self.workdir / "pki", [MGMT_ROOT])
        # host shells inherit this environment: mp-* on PATH, mp-ctl finds the controller
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        os.environ["MP_CTL_CONTROLLER"] = self.northbound
        os.environ["MP_CTL_TOKEN"] = OPS_TOKEN
        os.environ.update(tls_environment("MP_CTL", self.pki))
        net = self.net = Mininet(controller=None, build=False, autoSetMacs=False)
        rates = ({h.port: self.bottleneck_bps for h in self.hosts[2:]}
                 if self.bottleneck_bps else {})
        self.switch = net.addSwitch(SWITCH_NAME, cls=mp4.P4Switch, target=self.target,
                                    log_file=self.workdir / "switch.log", port_rates=rates,
                                    tls=launcher.SwitchTls(
                                        self.pki.server_cert, self.pki.server_key, self.pki.ca,
                                        client_auth=True, client_cert=self.pki.client_cert,
                                        client_key=self.pki.client_key))
        nodes = {h.name: net.addHost(h.name, ip=f"{h.ip}/24", mac=h.mac) for h in self.hosts}
        mode = None if self.link_mode == "auto" else self.link_mode
        for h in self.hosts:
            params = self.links.get(h.name)
            how = mp4.add_access_link(net, nodes[h.name], self.switch, h.port, params, params,
                                      mode)
            if how != "plain":
                self.link_how = how
        net.build()
        self._record()
        net.start()
        self._record()
        for h in self.hosts:
            mp4.configure_host(nodes[h.name], h.gateway, h.switch_mac)
        proxy = nodes["proxy"]
        proxy.cmd(f"sysctl -qw net.ipv4.ip_local_port_range='{PROXY_EPHEMERAL}'")
        self._management_link(proxy)
        conf = self.workdir / "controller.toml"
        conf.write_text(controller_config(self.hosts, self.switch.grpc_addr, self.northbound))

        daemon = self._start_daemon
        daemon("mp-controller", None, [*tool("mp-controller"), "--config", str(conf),
                                       "--log-level", "info"], r"pipeline pushed", 60)
        for h in self.hosts[2:]:
            daemon(f"mp-target {h.name}", nodes[h.name],
                   [*tool("mp-target"), "--quic", f"{h.ip}:{QUIC_PORT}", "--udp",
                    f"{h.ip}:{UDP_PORT}", *self.target_args], r"ready", 30)
        allow = [a for h in self.hosts[2:] for a in ("--allow", h.subnet)]
        daemon("mp-proxy", proxy, [*tool("mp-proxy"), "--listen", f"{self.proxy.ip}:{QUIC_PORT}",
                                   *allow, "--controller", self.northbound,
                                   "--controller-token", PROXY_TOKEN, *tls_args(self.pki),
                                   *self.proxy_args],
               r"serving CONNECT-UDP", 30)

    def _lock(self) -> None:
        """Take LOCK_FILE, waiting up to `lock_wait` s; RuntimeError if another run holds it."""
        fd = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
        deadline = time.monotonic() + self.lock_wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RuntimeError(f"another {PROG} topology is running (it holds "
                                       f"{LOCK_FILE}); stop it first") from None
                if not told:
                    print(f"{PROG}: waiting for another {PROG} topology to finish",
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(0.5)
        self._lock_fd = fd

    def _management_link(self, proxy: Any) -> None:
        """A veth from the root namespace (the controller's northbound API) to the proxy."""
        subprocess.run(["ip", "link", "del", MGMT_ROOT_IF], capture_output=True)
        self._mgmt_made = True
        for argv in (["ip", "link", "add", MGMT_ROOT_IF, "type", "veth", "peer", "name",
                      MGMT_PROXY_IF, "netns", str(proxy.pid)],
                     ["ip", "addr", "add", f"{MGMT_ROOT}/30", "dev", MGMT_ROOT_IF],
                     ["ip", "link", "set", MGMT_ROOT_IF, "up"]):
            subprocess.run(argv, check=True, capture_output=True)
        proxy.cmd("ip", "addr", "add", f"{MGMT_PROXY}/30", "dev", MGMT_PROXY_IF)
        proxy.cmd("ip", "link", "set", MGMT_PROXY_IF, "up")

    def describe_links(self) -> str:
        """The impaired access links and how they are emulated, in one phrase."""
        if not self.links:
            return "plain links"
        how = {"netem": "netem (Mininet TCLink parameters)",
               "userspace": "userspace emulator nodes"}.get(self.link_how, self.link_how)
        return ("impaired links (" + "; ".join(f"{h.name}: {self.links[h.name].describe()}"
                                               for h in self.hosts if h.name in self.links)
                + f", each way) via {how}")

    @property
    def proxy(self) -> HostPlan:
        """The proxy host's plan."""
        return self.hosts[1]

    @property
    def client(self) -> HostPlan:
        """The client host's plan."""
        return self.hosts[0]

    def node(self, name: str) -> Any:
        """The Mininet node called `name`."""
        return self.net[name]

    def _start_daemon(self, label: str, node: Any, argv: list[str], ready: str,
                      timeout: float) -> None:
        from topologies import mininet_p4 as mp4
        from topologies.nsprocess import NamespaceProcess

        proc = NamespaceProcess(None, mp4.mnexec_argv(node, argv), ready=ready,
                                ready_timeout=timeout, name=label)
        self.processes[label] = proc
        try:
            proc.start()
        finally:
            self._record()

    def start_daemon(self, label: str, host: str, argv: list[str], ready: str,
                     timeout: float = 30.0) -> None:
        """Start `argv` on Mininet host `host` and wait for a line matching `ready`; it is
        stopped by PID with the topology (e.g. the LLM back-end on a target host)."""
        self._start_daemon(label, self.node(host), argv, ready, timeout)

    def run_on(self, host: str, argv: list[str], timeout: float,
               label: str | None = None) -> str:
        """Run `argv` on Mininet host `host` until it exits; its stdout (ProcessFailed with
        its last lines when it fails; its stderr stays in `last_stderr`). It is stopped by
        PID if this is interrupted."""
        from topologies import mininet_p4 as mp4
        from topologies.nsprocess import NamespaceProcess, ProcessFailed

        label = label or f"{Path(argv[0]).name} on {host}"
        proc = NamespaceProcess(None, mp4.mnexec_argv(self.node(host), argv),
                                capture_stdout=True, name=label)
        self.processes[label] = proc
        proc.start()
        self._record()
        try:
            out = proc.communicate(timeout=timeout)
        finally:
            proc.stop()
            self.processes.pop(label, None)
            self.last_stderr = list(proc.output)
        if proc.poll() != 0:
            raise ProcessFailed(f"{label} exited with {proc.poll()}: "
                                f"{' | '.join(list(proc.output)[-5:])}")
        return out

    def cpu_seconds(self, label: str = "mp-proxy") -> float:
        """User plus system CPU seconds that process `label` (default the proxy) has used."""
        pid = self.processes[label].proc.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def pids(self) -> dict[str, int]:
        """Every process this topology runs: its daemons, emulators, switch and Mininet shells."""
        from topologies.mininet_p4 import topology_pids
        return topology_pids(self.processes, self.net)

    def netns_inodes(self) -> set[int]:
        """The network namespaces of the Mininet nodes that have one (by inode)."""
        from topologies.mininet_p4 import topology_netns_inodes
        return topology_netns_inodes(self.net)

    def _record(self) -> None:
        """Write STATE_FILE: our PID, every PID we started (with start times), our links."""
        pids = {label: [pid, _start_time(pid)] for label, pid in self.pids().items()}
        STATE_FILE.write_text(json.dumps({"owner": [os.getpid(), _start_time(os.getpid())],
                                          "pids": pids, "workdir": str(self.workdir)}))

    def stop(self) -> list[str]:
        """Stop everything by PID and remove every link and namespace; idempotent.

        Every step is tried even when one fails; the failures are returned (and printed).
        """
        if self._stopped or self._lock_fd is None:  # stopped, or never got the lock: the
            # links and state file named like ours would be another run's; the work
            # directory is still this object's own
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            return []
        self._stopped = True
        errors: list[str] = []

        def attempt(what: str, fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - go on cleaning up
                errors.append(f"{what}: {exc}")

        # our daemons first (proxy before controller: it closes its flows), then the
        # switch and the emulators by PID, then Mininet's links, switches and hosts
        for label in sorted(self.processes, key=lambda x: (x == "mp-controller", x)):
            attempt(f"stopping {label}", self.processes[label].stop)
        if self.net is not None:
            for sw in self.net.switches:
                proc = getattr(sw, "process", None)
                if proc is not None:
                    attempt(f"stopping {sw.name}", proc.stop)
        if self._mgmt_made:
            gone = subprocess.run(["ip", "link", "del", MGMT_ROOT_IF], capture_output=True,
                                  text=True)
            if gone.returncode != 0 and "Cannot find device" not in gone.stderr:
                errors.append(f"ip link del {MGMT_ROOT_IF}: {gone.stderr.strip()}")
        if self.net is not None:
            # a Ctrl-C may have left a node's shell in the middle of a command (pingall):
            # interrupt it, or Mininet cannot delete that node's interfaces
            for node in [*self.net.hosts, *self.net.switches]:
                if node.shell is not None and node.waiting:
                    attempt(f"interrupting {node.name}", _interrupt, node)
            attempt("stopping Mininet", self.net.stop)
        attempt("deleting leftover links", _delete_root_links)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            STATE_FILE.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        for error in errors:
            print(f"{PROG}: cleanup: {error}", file=sys.stderr)
        return errors

    # -- checks and the demonstration --------------------------------------------------------

    def ping_all(self) -> float:
        """Mininet's pingall between the hosts through the switch; the share lost, in %."""
        return float(self.net.pingAll(timeout="2"))

    def ctl(self, *args: str) -> dict[str, Any]:
        """`mp-ctl --json ARGS` against the controller, from the root namespace."""
        done = subprocess.run([*tool("mp-ctl"), "--controller", self.northbound, "--token",
                               OPS_TOKEN, "--json", *args], capture_output=True, text=True,
                              timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"mp-ctl {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def demo(self, count: int = 5, size: int = 1000, target: str = "t1") -> DemoResult:
        """mp-client --fastpath from the client to `target` through the proxy; what happened.

        While it runs, a backup P4Runtime client reads the switch's decap/encap direct
        counters every 5 ms (they go away with the flow when the tunnel closes).
        """
        from topologies import mininet_p4 as mp4
        from topologies.nsprocess import NamespaceProcess

        dest = next(h for h in self.hosts if h.name == target)
        reader = CounterReader(self.switch.grpc_addr, pki=self.pki)
        reader.start()
        try:
            client = NamespaceProcess(None, mp4.mnexec_argv(self.node("client"), [
                *tool("mp-client"), f"{self.proxy.ip}:{QUIC_PORT}", "--target",
                f"{dest.ip}:{QUIC_PORT}", "--fastpath", "--count", str(count), "--size",
                str(size), "--timeout", "10"]), name="mp-client")
            self.processes["mp-client"] = client
            client.start()
            try:
                client.communicate(timeout=60)
            finally:
                client.stop()
        finally:
            reader.stop()
        lines = list(client.output)
        text = "\n".join(lines)
        fast = re.search(r"fast path: (flow \d+ via \S+)", text)
        shims = re.search(r"shims sent (\d+), received (\d+)", text)
        rtts = re.search(r"\[([\d. ]+)\]", text)
        result = DemoResult(
            exit_code=client.poll() or 0, lines=lines, granted=fast is not None,
            fastpath=fast.group(1) if fast else "slow path",
            rtts_ms=[float(v) for v in rtts.group(1).split()] if rtts else [],
            shims_sent=int(shims.group(1)) if shims else 0,
            shims_received=int(shims.group(2)) if shims else 0,
            decap=reader.last.get("decap_counter", (0, 0)),
            encap=reader.last.get("encap_counter", (0, 0)), flow_reads=reader.flow_reads)
        result.stats = self.ctl("stats")
        return result


def _interrupt(node: Any, timeout: float = 5.0) -> None:
    """Ctrl-C to the command a Mininet node's shell is running; wait for its prompt."""
    node.sendInt()
    deadline = time.monotonic() + timeout
    while node.waiting and time.monotonic() < deadline:
        node.monitor(timeoutms=100)
    node.waiting = False


def _delete_root_links() -> None:
    """Delete our root-namespace interfaces that are still there (normally none)."""
    from topologies import mininet_p4 as mp4

    for ifname in mp4.root_links(ROOT_LINK_PREFIXES):
        subprocess.run(["ip", "link", "del", ifname], capture_output=True)


class CounterReader:
    """Reads decap_counter/encap_counter as a backup P4Runtime client, in a thread, until
    stopped; keeps the last reading that found the flow's entries."""

    def __init__(self, grpc_addr: str, interval: float = 0.005,
                 pki: RunPki | None = None) -> None:
        self.grpc_addr = grpc_addr
        self.pki = pki
        self.interval = interval
        self.last: dict[str, tuple[int, int]] = {}
        self.flow_reads = 0
        self.error = ""
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True,
                                        name="counter-reader")

    def start(self, timeout: float = 15.0) -> None:
        """Start reading; returns once the session is open (or failed)."""
        self._thread.start()
        self._ready.wait(timeout)

    def stop(self) -> None:
        """Stop reading (a last read first) and join the thread."""
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        import finsy as fy

        from controller.p4runtime import NotPrimary, P4RuntimeSession
        from controller.tls import TlsFiles

        tls = None if self.pki is None else TlsFiles(self.pki.client_cert, self.pki.client_key,
                                                     self.pki.ca)
        session = P4RuntimeSession(self.grpc_addr, election_id=READER_ELECTION_ID, tls=tls)
        try:
            with contextlib.suppress(NotPrimary):
                await session.open()  # the controller (a higher election id) stays primary
        except Exception as exc:  # noqa: BLE001 - reported, the demo goes on
            self.error = str(exc)
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                stopping = self._stop.is_set()
                reading: dict[str, tuple[int, int]] = {}
                present = True  # both entries read: the flow was open for the whole reading
                for name in ("decap_counter", "encap_counter"):
                    found = await session.read([fy.P4DirectCounterEntry(name)])
                    present = present and bool(found)
                    reading[name] = (sum(e.data.packet_count for e in found),
                                     sum(e.data.byte_count for e in found))
                if present:
                    self.last = reading
                    self.flow_reads += 1
                if stopping:
                    return
                await asyncio.sleep(self.interval)
        except Exception as exc:  # noqa: BLE001
            self.error = str(exc)
        finally:
            await session.close()


def print_demo(topo: MasqueTopology, result: DemoResult) -> None:
    """The demonstration's report for people."""
    print(f"\n*** Demo: mp-client --fastpath on client ({topo.client.ip}) through mp-proxy "
          f"({topo.proxy.ip}:{QUIC_PORT}) to mp-target on t1 (10.0.3.10:{QUIC_PORT})")
    for line in result.lines:
        print(f"    {line}")
    print(f"fast path granted: {'yes, ' + result.fastpath if result.granted else 'NO'}")
    if result.rtts_ms:
        print("inner QUIC echo RTTs (ms): " + " ".join(f"{v:.1f}" for v in result.rtts_ms))
    print(f"client shims: sent {result.shims_sent}, received {result.shims_received}")
    print(f"switch direct counters, last read while the flow was open ({result.flow_reads} "
          f"reads, 5 ms apart): decap_counter {result.decap[0]} pkts / {result.decap[1]} B, "
          f"encap_counter {result.encap[0]} pkts / {result.encap[1]} B")
    for sw in result.stats.get("switches", []):
        rows = [c for c in sw.get("counters", []) if int(c.get("packets", 0))]
        print(f"mp-ctl stats: switch {sw.get('switch')}, mode {sw.get('sched_mode')}; "
              "non-zero counters:")
        for c in rows:
            print(f"    {c.get('name')}[{c.get('index', 0)}] {c.get('label', '')}: "
                  f"{c.get('packets')} pkts, {c.get('bytes', 0)} B")
        print("    SP-PIFO bounds: " + (" ".join(map(str, sw.get("sppifo_bounds", [])))
                                         or sw.get("note", "-")))


def cli_help(topo: MasqueTopology) -> str:
    """What to try at Mininet's CLI."""
    t1 = topo.hosts[2].ip
    return f"""
*** The MASQUE topology is up. Commands to try (mp-* are on PATH; mp-ctl knows the controller):
  pingall
  client ping -c 3 {t1}
  client mp-client {topo.proxy.ip}:{QUIC_PORT} --target {t1}:{QUIC_PORT} --fastpath --count 5
  client mp-client {topo.proxy.ip}:{QUIC_PORT} --target {t1}:{UDP_PORT} --protocol udp --fastpath
  client mp-client {topo.proxy.ip}:{QUIC_PORT} --target {t1}:{QUIC_PORT}   (via the proxy)
  client python -m hostagent.masque.paced --proxy {topo.proxy.ip}:{QUIC_PORT} \
--target {t1}:{UDP_PORT} --fastpath --flow high,0,0.4mbit,200 --flow bulk,10,6mbit,1200 --seconds 3
     (paced tunnels with priorities; with --bottleneck the high one keeps its RTT)
  sh mp-ctl stats
  sh mp-ctl flow list
  sh mp-ctl rank list
  sh mp-ctl table dump ipv4_lpm
  sh mp-ctl sched set fifo
  links / net / dump
  exit   (or Ctrl-D: everything is stopped and removed)
controller northbound {topo.northbound} (token {OPS_TOKEN}); P4Runtime {topo.switch.grpc_addr};
switch log {topo.workdir / 'switch.log'}
"""


# -- cleanup of a crashed run ------------------------------------------------------------------


def cleanup_leftovers(mininet_too: bool = True) -> list[str]:
    """Remove what a crashed run left: its processes (by the PIDs STATE_FILE recorded, checked
    against their start times), our root-namespace links, its work directory; then, with
    `mininet_too`, Mininet's own `mn -c` (`mininet.clean.cleanup()`). What was done, as text."""
    from topologies import mininet_p4 as mp4

    done: list[str] = []
    state: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        state = json.loads(STATE_FILE.read_text())
    owner = state.get("owner")
    if owner and owner[0] != os.getpid() and _same_process(owner[0], owner[1]):
        raise RuntimeError(f"a {PROG} topology is still running (pid {owner[0]}); stop it "
                           "first (Ctrl-C or exit its CLI)")
    for label, (pid, started) in sorted(state.get("pids", {}).items()):
        if not _same_process(pid, started):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            done.append(f"sent SIGTERM to {label} (pid {pid})")
    deadline = time.monotonic() + 5
    for _label, (pid, started) in state.get("pids", {}).items():
        while _same_process(pid, started):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    for ifname in mp4.root_links(ROOT_LINK_PREFIXES):
        subprocess.run(["ip", "link", "del", ifname], capture_output=True)
        done.append(f"deleted link {ifname}")
    workdir = state.get("workdir")
    if workdir and Path(workdir).name.startswith("mp-mininet-"):
        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        STATE_FILE.unlink()
        done.append(f"removed {STATE_FILE}")
    if mininet_too:
        done.append(_mininet_cleanup())
    return done


def _mininet_cleanup() -> str:
    """Run Mininet's `mn -c` with its shell commands' stderr captured, so that the
    complaints of a machine without Open vSwitch (ovs-vsctl not found) are not shown as
    errors; what else it printed is passed on."""
    from mininet.clean import cleanup

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err:
        os.dup2(err.fileno(), 2)
        try:
            cleanup()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        lines = err.read().decode(errors="replace").splitlines()
    no_ovs = [line for line in lines if "ovs-vsctl" in line and "not found" in line]
    for line in lines:
        if line not in no_ovs and line.strip():
            print(line, file=sys.stderr)
    return "ran Mininet's cleanup (mn -c)" + (" (no Open vSwitch here: its part skipped)"
                                              if no_ovs else "")


# -- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="The MASQUE proxy topology in Mininet: client, proxy and "
        "targets on a P4 switch with the fast path; a demonstration, or Mininet's CLI.",
        epilog="run as root with the project's venv: sudo .venv/bin/python "
        "topologies/masque_proxy.py --cli")
    parser.add_argument("--cli", action="store_true",
                        help="bring everything up and open Mininet's CLI instead of the demo")
    parser.add_argument("--target", choices=["soft", "bmv2"], default="soft",
                        help="P4 target: soft (the built-in target, default) or bmv2")
    parser.add_argument("--targets", type=int, default=1, metavar="N",
                        help=f"target hosts t1..tN (1..{MAX_TARGETS}, default 1)")
    add_link_arguments(parser, None)
    parser.add_argument("--bottleneck", metavar="RATE",
                        help="shape the switch's ports towards the targets, e.g. 5mbit, so "
                        "its queues and scheduling mode decide who waits (built-in target "
                        "only; default: unshaped)")
    parser.add_argument("--count", type=int, default=5, help="demo echo exchanges (5)")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove leftovers of a crashed run (ours, then Mininet's mn -c)")
    parser.add_argument("-v", "--verbose", action="store_true", help="Mininet's info log")
    return parser


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_guarded(prog: str, topo: Any, body: Callable[[], int]) -> int:
    """`body()`'s exit code (it starts `topo` and uses it), with `topo.stop()` whatever
    happens: SIGTERM and SIGHUP end it like Ctrl-C (exit 130 or 128+signal), an error
    is one line (exit 1), a second Ctrl-C does not interrupt the cleanup, and a failed
    cleanup makes the exit code non-zero. For scripts built on MasqueTopology."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    # Ctrl-C (or kill -INT) cleans up even when this was started with SIGINT ignored (a
    # background job of a shell without job control), where Python leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        code = body()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted, cleaning up", file=sys.stderr)
        code = 130
    except SystemExit as exc:
        print(f"\n{prog}: stopped by a signal, cleaning up", file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - one line for people, then the cleanup
        print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
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


def add_link_arguments(parser: argparse.ArgumentParser, client_default: str | None) -> None:
    """--link (the client's access link), --host-link (any host's) and --link-mode."""
    default = ("a plain link" if client_default is None
               else f"{client_default!r}; 'none': a plain link".replace("%", "%%"))
    parser.add_argument("--link", metavar="SPEC", default=client_default,
                        help="impair the client's access link, both directions, e.g. "
                        f'"rate=5mbit,delay=50ms,loss=1%%" (default: {default})')
    parser.add_argument("--host-link", metavar="HOST:SPEC", action="append", default=[],
                        help="impair the access link of HOST (client, proxy, t1..tN), both "
                        'directions, e.g. "t1:rate=10mbit,delay=20ms"; repeatable')
    parser.add_argument("--link-mode", choices=["auto", "netem", "userspace"], default="auto",
                        help="how impaired links are emulated: netem (Mininet TCLink "
                        "parameters), userspace (an emulator node per link), auto: netem "
                        "where the kernel has it")


def parse_links(parser: argparse.ArgumentParser, args: argparse.Namespace,
                hosts: list[str]) -> dict[str, LinkParams]:
    """The impaired access links by host name: the client's (--link) and any host's
    (--host-link), checked against the topology's `hosts`; a parser error (exit 2) on a
    bad one. For `MasqueTopology(host_links=...)`."""
    host_links: dict[str, LinkParams] = {}
    if args.link and args.link != "none":
        try:
            host_links["client"] = parse_spec(args.link)
        except ValueError as exc:
            parser.error(f"--link: {exc}")
    for item in args.host_link:
        host, sep, spec = item.partition(":")
        if not sep or not host or not spec:
            parser.error(f"--host-link: expected HOST:SPEC, e.g. t1:rate=10mbit, got {item!r}")
        if host not in hosts:
            parser.error(f"--host-link: no host {host!r} (hosts: {', '.join(hosts)})")
        if host in host_links:
            parser.error(f"--host-link: the link of {host} is given twice")
        try:
            host_links[host] = parse_spec(spec)
        except ValueError as exc:
            parser.error(f"--host-link {host}: {exc}")
    return host_links


def parse_bottleneck(parser: argparse.ArgumentParser, value: str | None,
                     target: str) -> int | None:
    """--bottleneck in bits/s (None: unshaped); a parser error (exit 2) when it is not a
    rate or the target has no port shaper."""
    if not value:
        return None
    try:
        rate = parse_rate(value)
    except ValueError as exc:
        parser.error(f"--bottleneck: {exc}")
    if not rate:
        parser.error("--bottleneck: give a rate, e.g. 5mbit")
    if target != "soft":
        parser.error("--bottleneck needs --target soft: BMv2 has no port-level shaper")
    return rate


def preflight(prog: str, args: argparse.Namespace, impaired: bool,
              script: str) -> int | None:
    """What every script on MasqueTopology checks before it starts one: root, Mininet,
    netem where `--link-mode netem` asks for it, BMv2 for `--target bmv2`, the project's
    venv. Then `--cleanup` (done here, exit 0), leftovers of a crashed run removed, and
    Mininet's log level from `-v`. An exit code to stop with (the reason printed in one
    line), or None to go on."""
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"{prog}: {cap.detail}", file=sys.stderr)
            return 1
    if impaired and args.link_mode == "netem":
        reason = netem_unavailable_reason()
        if reason is not None:
            print(f"{prog}: --link-mode netem: netem does not work here ({reason}); "
                  "use --link-mode userspace or auto", file=sys.stderr)
            return 1
    if args.target == "bmv2" and not capabilities.bmv2().available:
        print(f"{prog}: --target bmv2: {capabilities.bmv2().detail}", file=sys.stderr)
        return 1
    try:
        import finsy  # noqa: F401 - the project's dependencies, from its venv
    except ModuleNotFoundError:
        print(f"{prog}: the project's packages are missing: run it with the venv's python "
              f"(sudo .venv/bin/python {script}; `make test` creates .venv)", file=sys.stderr)
        return 1
    try:
        if args.cleanup:
            for line in cleanup_leftovers():
                print(f"{prog}: {line}")
            return 0
        if STATE_FILE.exists():
            leftovers = cleanup_leftovers(mininet_too=False)
            if leftovers:
                print(f"{prog}: removed leftovers of an earlier run: " + "; ".join(leftovers))
    except RuntimeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    from mininet.log import setLogLevel

    setLogLevel("info" if args.verbose else "output")
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse, check the host, run the demo or the CLI; clean up whatever happens."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.targets <= MAX_TARGETS:
        parser.error(f"--targets must be 1..{MAX_TARGETS}, got {args.targets}")
    host_links = parse_links(parser, args, [h.name for h in plan_hosts(args.targets)])
    bottleneck = parse_bottleneck(parser, args.bottleneck, args.target)
    if args.count < 1:
        parser.error("--count must be >= 1")
    code = preflight(PROG, args, bool(host_links), "topologies/masque_proxy.py")
    if code is not None:
        return code
    from mininet.cli import CLI

    topo = MasqueTopology(target=args.target, targets=args.targets,
                          host_links=host_links, link_mode=args.link_mode,
                          bottleneck_bps=bottleneck, lock_wait=0.0)

    def body() -> int:
        started = time.monotonic()
        topo.start()
        print(f"*** topology up in {time.monotonic() - started:.1f} s: {args.target} target, "
              f"hosts {', '.join(h.name for h in topo.hosts)}; {topo.describe_links()}"
              + (f"; ports to the targets shaped to {args.bottleneck}" if bottleneck else ""),
              flush=True)
        if args.cli:
            print(cli_help(topo), flush=True)
            CLI(topo.net)
            return 0
        lost = topo.ping_all()
        result = topo.demo(count=args.count)
        print_demo(topo, result)
        ok = lost == 0 and result.granted and result.exit_code == 0
        print(f"\n*** demo {'OK' if ok else 'FAILED'}: ping loss {lost:g}%, fast path "
              f"{'granted' if result.granted else 'not granted'}, mp-client exit "
              f"{result.exit_code}", flush=True)
        return 0 if ok else 1

    return run_guarded(PROG, topo, body)


if __name__ == "__main__":
    sys.exit(main())
