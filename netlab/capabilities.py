"""What this host can run: root, network namespaces, Mininet, BMv2, p4c, Go.

Tests skip on these (with the reason printed), the demo reports them, and the
topologies refuse to start without them, so all three say the same thing.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Environment variables that name a program's path explicitly (highest precedence).
OVERRIDES = {
    "p4c": "MP_P4C",
    "simple_switch_grpc": "MP_SIMPLE_SWITCH_GRPC",
    "bf-p4c": "MP_BF_P4C",     # p4c's Tofino backend driver (p4src/tna/)
    "p4test": "MP_P4TEST",     # p4c's front/mid-end checker (type-checks the TNA program)
}

#: Install prefixes searched after PATH, in order (p4c and BMv2 are built from source,
#: usually under /opt, since neither Debian nor PyPI packages them).
SEARCH_DIRS = ("/opt/p4/bin", "/opt/p4c/bin", "/opt/bmv2/bin", "/usr/local/bin")


def _candidates(name: str) -> list[str]:
    found: list[str] = []
    override = os.environ.get(OVERRIDES.get(name, ""), "")
    if override:
        found.append(override)
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    found.extend(os.path.join(d, name) for d in SEARCH_DIRS)
    found.extend(sorted(glob.glob(f"/opt/*/bin/{name}")))
    return found


def find_program(name: str) -> Path | None:
    """The path of an executable program (override variable, PATH, /opt), or None."""
    for candidate in _candidates(name):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass(frozen=True)
class Capability:
    """Whether a host feature is usable, and if not, why (a one-line reason)."""

    name: str
    available: bool
    detail: str


@functools.cache
def root() -> Capability:
    ok = os.geteuid() == 0
    return Capability("root", ok, "running as root" if ok else "needs root (run as root or sudo)")


@functools.cache
def netns() -> Capability:
    """Create and delete a throw-away namespace: the only test that proves it works."""
    if not root().available:
        return Capability("netns", False, "network namespaces need root")
    if shutil.which("ip") is None:
        return Capability("netns", False, "the `ip` command (Debian package iproute2) is missing")
    name = f"mp-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return Capability("netns", False, f"`ip netns add` failed: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return Capability("netns", True, "ip netns add/delete works")


@functools.cache
def mininet() -> Capability:
    if importlib.util.find_spec("mininet") is None:
        return Capability("mininet", False, "Mininet's Python package is missing "
                          "(Debian package mininet; the venv needs --system-site-packages)")
    if shutil.which("mnexec") is None:
        return Capability("mininet", False, "mnexec (Debian package mininet) is not on PATH")
    if not netns().available:
        return Capability("mininet", False, f"Mininet needs namespaces: {netns().detail}")
    return Capability("mininet", True, "Mininet and mnexec found")


def _program(name: str) -> Capability:
    path = find_program(name)
    if path is None:
        return Capability(name, False, f"{name} not installed (PATH, /opt/*/bin; "
                          f"or set ${OVERRIDES[name]})")
    return Capability(name, True, str(path))


@functools.cache
def bmv2() -> Capability:
    return _program("simple_switch_grpc")


@functools.cache
def p4c() -> Capability:
    return _program("p4c")


def all_capabilities() -> list[Capability]:
    """Every capability, in the order a report shows them."""
    return [root(), netns(), mininet(), bmv2(), p4c()]
