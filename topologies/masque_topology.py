"""The MASQUE proxy topology in Mininet: client, proxy and targets on a P4 switch (either
target), with mp-controller, mp-proxy and mp-target started on it, and its clean-up.

`MasqueTopology` builds and starts it from the plan (`masque_plan`) and removes it all on
`stop()`; `cleanup_leftovers` removes what a crashed run left, from the PIDs it recorded
in STATE_FILE. Only one runs at a time per machine (LOCK_FILE), since Mininet's switch
and the management veth have fixed names in the root namespace.
"""

from __future__ import annotations

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bmv2 import launcher
from hostagent.certs import write_run_pki
from netlab.linkemu import LinkParams
from topologies.masque_plan import (
    MAX_TARGETS,
    MGMT_PROXY,
    MGMT_PROXY_IF,
    MGMT_ROOT,
    MGMT_ROOT_IF,
    OPS_TOKEN,
    PROXY_EPHEMERAL,
    PROXY_TOKEN,
    QUIC_PORT,
    SWITCH_NAME,
    UDP_PORT,
    HostPlan,
    controller_config,
    plan_hosts,
    tls_args,
    tls_environment,
    tool,
)
from topologies.switch_counters import CounterReader

REPO = Path(__file__).resolve().parent.parent
PROG = "masque_proxy"
#: root-namespace interfaces this topology makes (switch ports, the management veth)
ROOT_LINK_PREFIXES = (f"{SWITCH_NAME}-eth", MGMT_ROOT_IF)
STATE_FILE = Path("/run/masque-pifo-mininet.json")
#: held (flock) while a topology is up: one at a time, since the names are fixed
LOCK_FILE = Path("/run/masque-pifo-mininet.lock")


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


def _answered(ping_output: str) -> bool:
    """Whether `ping -c1` got its echo reply."""
    found = re.search(r"(\d+) (?:packets )?received", ping_output)
    return found is not None and int(found.group(1)) > 0


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
        pki = self.pki
        self.switch = net.addSwitch(SWITCH_NAME, cls=mp4.P4Switch, target=self.target,
                                    log_file=self.workdir / "switch.log", port_rates=rates,
                                    tls=launcher.SwitchTls(
                                        pki.server_cert, pki.server_key, pki.ca,
                                        client_auth=True, client_cert=pki.client_cert,
                                        client_key=pki.client_key))
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
        self.start_proxy()

    def start_proxy(self, proxy_args: list[str] | None = None) -> None:
        """Start mp-proxy on the proxy host (with the controller); `proxy_args` replace the
        extra flags given so far. RuntimeError while one runs."""
        if "mp-proxy" in self.processes:
            raise RuntimeError("mp-proxy is running: stop_proxy() first")
        if proxy_args is not None:
            self.proxy_args = list(proxy_args)
        allow = [a for h in self.hosts[2:] for a in ("--allow", h.subnet)]
        self._start_daemon("mp-proxy", self.node("proxy"), [
            *tool("mp-proxy"), "--listen", f"{self.proxy.ip}:{QUIC_PORT}", *allow,
            "--controller", self.northbound, "--controller-token", PROXY_TOKEN,
            *tls_args(self.pki), *self.proxy_args], r"serving CONNECT-UDP", 30)

    def stop_proxy(self, grace: float = 20.0) -> list[str]:
        """Stop mp-proxy by PID (SIGTERM: it closes its tunnels, has its switch mappings
        removed and logs its counters; SIGKILL after `grace` s); its last lines of output
        ([] when none runs)."""
        proc = self.processes.pop("mp-proxy", None)
        if proc is None:
            return []
        proc.stop(grace)
        self._record()
        return list(proc.output)

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
        from netlab.nsprocess import NamespaceProcess
        from topologies import mininet_p4 as mp4

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
        from netlab.nsprocess import NamespaceProcess, ProcessFailed
        from topologies import mininet_p4 as mp4

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
        """User plus system CPU seconds that process `label` (default the proxy; "switch":
        the switch target's process, all its threads) has used."""
        pid = self.switch.switch_pid if label == "switch" else self.processes[label].proc.pid
        if pid is None:
            raise RuntimeError("the switch is not running")
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

    def ping_all(self, tries: int = 3) -> float:
        """Ping every host from every other through the switch, each pair up to `tries`
        times (the client's link may be lossy: one lost probe is not an unreachable
        host); the share of pairs that never answered, in %. Prints the matrix as
        Mininet's pingall does."""
        from mininet.log import output

        hosts = list(self.net.hosts)
        pairs = failed = 0
        output(f"*** Ping: testing ping reachability (up to {tries} probes a pair)\n")
        for src in hosts:
            output(f"{src.name} -> ")
            for dst in hosts:
                if dst is src:
                    continue
                pairs += 1
                reached = any(_answered(src.cmd(f"ping -c1 -W2 {dst.IP()}"))
                              for _ in range(tries))
                failed += not reached
                output(f"{dst.name if reached else 'X'} ")
            output("\n")
        lost = 100.0 * failed / pairs if pairs else 0.0
        output(f"*** Results: {lost:.0f}% of pairs unreachable ({pairs - failed}/{pairs})\n")
        return lost

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
        from netlab.nsprocess import NamespaceProcess
        from topologies import mininet_p4 as mp4

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
