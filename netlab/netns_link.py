"""An emulated link between two network namespaces: netem where the kernel has it, else userspace.

    with EmulatedLink("h1", "10.251.0.1/24", "h2", "10.251.0.2/24",
                      a_to_b=LinkParams(rate_bps=5_000_000, delay_s=0.05, loss=0.01),
                      b_to_a=LinkParams(rate_bps=5_000_000, delay_s=0.05)) as link:
        ...  # h1 reaches 10.251.0.2 over link.ifname_a; link.mode says how it is emulated

Two ways, with the same addresses and interface names in both namespaces:

- netem: one veth pair straight from `ns_a` to `ns_b`, a netem qdisc on each
  end carrying that direction's rate, delay, jitter and loss;
- userspace: a third namespace holds the emulator (`netlab.linkemu_bridge`)
  between two veth pairs, ns_a <-> emulator <-> ns_b. The kernel's checksum and
  segmentation offloads are turned off on the four ends with ethtool, so that
  every frame the emulator reads is one finished frame it can send on.

`prefer="auto"` takes netem when `netem_available()` says it works, else userspace.
Everything made (namespaces that did not exist, veths, the emulator's namespace
and process) is removed on exit, also after an exception. Needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from netlab.linkemu import LinkParams, format_spec, netem_args, netem_unavailable_reason
from netlab.linkemu_bridge import PRIORITIES
from netlab.names import IFNAMSIZ, run_tag
from netlab.veth import offloads_off

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MODES = ("auto", "netem", "userspace")
BRIDGE_READY_TIMEOUT_S = 30.0
BRIDGE_STOP_TIMEOUT_S = 5.0
_REPO = Path(__file__).resolve().parent.parent
_serial = itertools.count()


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command (no shell); on failure raise RuntimeError carrying its stderr."""
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed (exit {done.returncode}): "
                           f"{done.stderr.strip()}")
    return done


def netns_exists(name: str) -> bool:
    """Whether `ip netns` knows a namespace called `name`."""
    return (NETNS_DIR / name).exists()


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the calling thread in network namespace `name` for the block, then switch back.

    Sockets made inside the block stay in `name` after it ends, which lets one
    process (a test, an experiment driver) talk from several namespaces at once
    without helper processes. Only the calling thread moves.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net", "rb") as home, open(NETNS_DIR / name, "rb") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into network namespace {name!r}: {os.strerror(err)}")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back from {name!r}: {os.strerror(err)}")


def _disable_ipv6(ns: str, conf: str) -> None:
    """Turn IPv6 off for `conf` (an interface, 'default' or 'all') in `ns`, where IPv6 exists.

    Without it, IPv6 link-local chatter (DAD, router solicitations, MLD) would
    cross the emulated link at random times and take the loss model's draws.
    """
    with in_netns(ns):
        path = Path(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6")
        if path.exists():
            path.write_text("1\n")


def _mac(ns: str, ifname: str) -> str:
    shown = json.loads(_run("ip", "-n", ns, "-j", "link", "show", "dev", ifname).stdout)
    return shown[0]["address"]


class EmulatedLink:
    """Joins `ns_a` (address `addr_a`) and `ns_b` (`addr_b`) with an emulated link.

    `a_to_b` impairs frames from ns_a to ns_b, `b_to_a` the other way (None: no
    impairment). `prefer` is "auto", "netem" or "userspace". Addresses carry their
    prefix and share a subnet ("10.251.0.1/30", "10.251.0.2/30"). Namespaces that
    do not exist are made, and removed again on exit. `static_arp` installs
    permanent neighbour entries so that ARP never crosses the lossy link. With
    IPv4 addresses, IPv6 is turned off on the link's interfaces, so only traffic
    the experiment makes crosses the link (and takes the loss model's draws).
    `bridge_priority` is the userspace emulator's `--priority` (realtime, high, normal).
    After `start()` (or entering the `with`), `mode` is "netem" or "userspace".
    """

    def __init__(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str,
                 a_to_b: LinkParams | None = None, b_to_a: LinkParams | None = None,
                 prefer: str = "auto", *, static_arp: bool = False, mtu: int = 1500,
                 ifname_a: str | None = None, ifname_b: str | None = None,
                 bridge_priority: str = "realtime") -> None:
        if bridge_priority not in PRIORITIES:
            raise ValueError(f"bridge_priority must be one of {', '.join(PRIORITIES)}, "
                             f"got {bridge_priority!r}")
        if prefer not in MODES:
            raise ValueError(f"prefer must be one of {', '.join(MODES)}, got {prefer!r}")
        if ns_a == ns_b:
            raise ValueError(f"the two ends must be different namespaces, got {ns_a!r} twice")
        try:
            self.addr_a = ipaddress.ip_interface(addr_a)
            self.addr_b = ipaddress.ip_interface(addr_b)
        except ValueError as exc:
            raise ValueError(f"bad address: {exc}") from None
        if (self.addr_a.network != self.addr_b.network
                or self.addr_a.network.num_addresses == 1):
            raise ValueError(f"{addr_a} and {addr_b} must be in one subnet, with its prefix "
                             "(e.g. 10.251.0.1/30 and 10.251.0.2/30)")
        if self.addr_a.ip == self.addr_b.ip:
            raise ValueError(f"both ends have the address {self.addr_a.ip}")
        tag = f"{run_tag()}{next(_serial)}"
        self.ifname_a = ifname_a or f"mpl{tag}a"
        self.ifname_b = ifname_b or f"mpl{tag}b"
        for ifname in (self.ifname_a, self.ifname_b):
            if not 0 < len(ifname) <= IFNAMSIZ or "/" in ifname or " " in ifname:
                raise ValueError(f"interface name {ifname!r} must be 1..{IFNAMSIZ} characters "
                                 "without '/' or spaces")
        self.ns_a, self.ns_b = ns_a, ns_b
        self.a_to_b = a_to_b or LinkParams()
        self.b_to_a = b_to_a or LinkParams()
        self.prefer = prefer
        self.static_arp = static_arp
        self.mtu = mtu
        self.bridge_priority = bridge_priority
        self.mode: str | None = None
        self.emu_ns = f"mpemu{tag}"
        self.bridge: subprocess.Popen[bytes] | None = None
        #: what the emulator wrote on stderr (its counters), once it has stopped
        self.bridge_log = ""
        self._bridge_stderr: IO[bytes] | None = None
        self._made_ns: list[str] = []
        self._made_links: list[tuple[str, str]] = []  # (namespace, veth end) this link added

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> EmulatedLink:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(raise_errors=exc is None)

    def start(self) -> None:
        """Build the link; on any failure remove what was built and re-raise."""
        if self.mode is not None:
            raise RuntimeError("this EmulatedLink has already been started")
        mode = self._choose_mode()
        try:
            for ns in (self.ns_a, self.ns_b):
                if not netns_exists(ns):
                    _run("ip", "netns", "add", ns)
                    self._made_ns.append(ns)
            if mode == "netem":
                self._start_netem()
            else:
                self._start_userspace()
            self.mode = mode
        except BaseException:
            self.close(raise_errors=False)
            raise

    def _choose_mode(self) -> str:
        if self.prefer == "userspace":
            return "userspace"
        reason = netem_unavailable_reason()
        if reason is None:
            return "netem"
        if self.prefer == "netem":
            raise RuntimeError(f"netem was asked for but does not work here: {reason}")
        log.info("link emulation in userspace: netem unavailable (%s)", reason)
        return "userspace"

    def _setup_end(self, ns: str, ifname: str, addr: ipaddress.IPv4Interface |
                   ipaddress.IPv6Interface) -> None:
        if isinstance(addr, ipaddress.IPv4Interface):
            _disable_ipv6(ns, ifname)
        _run("ip", "-n", ns, "link", "set", "dev", ifname, "mtu", str(self.mtu))
        _run("ip", "-n", ns, "addr", "add", str(addr), "dev", ifname)
        _run("ip", "-n", ns, "link", "set", "dev", "lo", "up")
        _run("ip", "-n", ns, "link", "set", "dev", ifname, "up")

    def _offloads_off(self, ends: list[tuple[str, str]], required: bool) -> None:
        for ns, ifname in ends:
            if not offloads_off(ifname, ns, required):
                log.warning("ethtool missing: TSO/GSO stay on, netem sees super-frames")
                return

    def _add_veth(self, ns1: str, if1: str, ns2: str, if2: str) -> None:
        _run("ip", "link", "add", if1, "netns", ns1, "type", "veth",
             "peer", "name", if2, "netns", ns2)
        self._made_links.append((ns1, if1))

    def _start_netem(self) -> None:
        self._add_veth(self.ns_a, self.ifname_a, self.ns_b, self.ifname_b)
        self._offloads_off([(self.ns_a, self.ifname_a), (self.ns_b, self.ifname_b)],
                           required=False)
        self._setup_end(self.ns_a, self.ifname_a, self.addr_a)
        self._setup_end(self.ns_b, self.ifname_b, self.addr_b)
        for ns, ifname, params in ((self.ns_a, self.ifname_a, self.a_to_b),
                                   (self.ns_b, self.ifname_b, self.b_to_a)):
            _run("tc", "-n", ns, "qdisc", "add", "dev", ifname, "root", "netem",
                 *netem_args(params))
        self._static_arp()

    def _start_userspace(self) -> None:
        _run("ip", "netns", "add", self.emu_ns)
        self._made_ns.append(self.emu_ns)
        _disable_ipv6(self.emu_ns, "default")
        _disable_ipv6(self.emu_ns, "all")
        self._add_veth(self.ns_a, self.ifname_a, self.emu_ns, "ea")
        self._add_veth(self.ns_b, self.ifname_b, self.emu_ns, "eb")
        self._offloads_off([(self.ns_a, self.ifname_a), (self.ns_b, self.ifname_b),
                            (self.emu_ns, "ea"), (self.emu_ns, "eb")], required=True)
        for ifname in ("ea", "eb"):
            _run("ip", "-n", self.emu_ns, "link", "set", "dev", ifname, "mtu", str(self.mtu))
            _run("ip", "-n", self.emu_ns, "link", "set", "dev", ifname, "up")
        self._setup_end(self.ns_a, self.ifname_a, self.addr_a)
        self._setup_end(self.ns_b, self.ifname_b, self.addr_b)
        self._static_arp()
        self._start_bridge()

    def _start_bridge(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
        # a file, not a pipe: nobody reads it until the emulator has stopped
        self._bridge_stderr = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in close()
            prefix="linkemu-", suffix=".log")
        self.bridge = subprocess.Popen(
            ["ip", "netns", "exec", self.emu_ns,
             sys.executable, "-m", "netlab.linkemu_bridge",
             "--a", "ea", "--b", "eb", "--a-to-b", format_spec(self.a_to_b),
             "--b-to-a", format_spec(self.b_to_a), "--priority", self.bridge_priority],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._bridge_stderr,
            env=env)
        assert self.bridge.stdout is not None
        deadline = time.monotonic() + BRIDGE_READY_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.bridge.stdout], [], [], max(left, 0))
            if not ready:
                raise RuntimeError(f"the link emulator did not start in {BRIDGE_READY_TIMEOUT_S}"
                                   f" s: {self._read_bridge_log()}")
            chunk = os.read(self.bridge.stdout.fileno(), 256)
            if not chunk:
                self.bridge.wait(timeout=BRIDGE_STOP_TIMEOUT_S)
                raise RuntimeError(f"the link emulator exited ({self.bridge.returncode}): "
                                   f"{self._read_bridge_log()}")
            line += chunk
        if b"ready" not in line:
            raise RuntimeError(f"unexpected output from the link emulator: {line!r}")

    def _read_bridge_log(self) -> str:
        if self._bridge_stderr is None:
            return ""
        return Path(self._bridge_stderr.name).read_text(errors="replace").strip()

    def _static_arp(self) -> None:
        if not self.static_arp:
            return
        mac_a, mac_b = _mac(self.ns_a, self.ifname_a), _mac(self.ns_b, self.ifname_b)
        _run("ip", "-n", self.ns_a, "neigh", "replace", str(self.addr_b.ip), "lladdr", mac_b,
             "dev", self.ifname_a, "nud", "permanent")
        _run("ip", "-n", self.ns_b, "neigh", "replace", str(self.addr_a.ip), "lladdr", mac_a,
             "dev", self.ifname_b, "nud", "permanent")

    def _stop_bridge(self) -> None:
        proc, self.bridge = self.bridge, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # by PID: proc is the emulator itself
                try:
                    proc.wait(timeout=BRIDGE_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=BRIDGE_STOP_TIMEOUT_S)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            self.bridge_log = self._read_bridge_log()
            if self._bridge_stderr is not None:
                self._bridge_stderr.close()
                self._bridge_stderr = None

    def close(self, raise_errors: bool = True) -> None:
        """Stop the emulator and remove every veth and namespace this link made.

        Every step is tried even when an earlier one fails; the failures are
        then raised together as one RuntimeError (or only logged, when
        `raise_errors` is false, as while another exception is on its way).
        """
        errors: list[str] = []
        try:
            self._stop_bridge()
        except Exception as exc:  # noqa: BLE001 - go on cleaning up
            errors.append(f"stopping the emulator: {exc}")
        # veths first, explicitly: deleting one end deletes its peer at once, whereas
        # a namespace's devices go away asynchronously after `ip netns delete`
        for ns, ifname in reversed(self._made_links):
            if not netns_exists(ns):
                continue
            gone = subprocess.run(["ip", "-n", ns, "link", "del", "dev", ifname],
                                  capture_output=True, text=True)
            if gone.returncode != 0 and "Cannot find device" not in gone.stderr:
                errors.append(f"ip -n {ns} link del {ifname}: {gone.stderr.strip()}")
        self._made_links.clear()
        for ns in reversed(self._made_ns):
            gone = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True)
            if gone.returncode != 0:
                errors.append(f"ip netns delete {ns}: {gone.stderr.strip()}")
        self._made_ns.clear()
        if errors:
            message = "; ".join(errors)
            if raise_errors:
                raise RuntimeError(f"cleaning up the emulated link: {message}")
            log.error("cleaning up the emulated link: %s", message)
