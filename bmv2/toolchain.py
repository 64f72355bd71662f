"""Locate the P4 toolchain (p4c, BMv2's simple_switch_grpc) on this machine.

p4c and BMv2 are not in Debian's or PyPI's registries, so users build them from
source, usually under /opt. Every part of the project that needs one of these
programs asks this module, so the search order and the error text are the same
everywhere (tests, `make p4`, launcher, topologies).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

#: Environment variables that name a program's path explicitly (highest precedence).
OVERRIDES = {
    "p4c": "MP_P4C",
    "simple_switch_grpc": "MP_SIMPLE_SWITCH_GRPC",
}

#: Install prefixes searched after PATH, in order.
SEARCH_DIRS = ("/opt/p4/bin", "/opt/p4c/bin", "/opt/bmv2/bin", "/usr/local/bin")


class ToolMissing(RuntimeError):
    """A toolchain program is not installed; the message says how to get it."""


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


def find(name: str) -> Path | None:
    """Return the path of an executable toolchain program, or None if absent."""
    for candidate in _candidates(name):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def require(name: str) -> Path:
    """Return the program's path or raise ToolMissing with a one-line explanation."""
    path = find(name)
    if path is None:
        var = OVERRIDES.get(name, "")
        raise ToolMissing(
            f"{name} not found (searched ${var}, PATH, {', '.join(SEARCH_DIRS)}, /opt/*/bin); "
            f"it is not packaged by Debian or PyPI: build it from p4lang's sources under /opt "
            f"or set {var} to its path"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m bmv2.toolchain NAME`: print a program's path, or a one-line error."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in OVERRIDES:
        print(f"usage: python -m bmv2.toolchain {{{'|'.join(OVERRIDES)}}}", file=sys.stderr)
        return 2
    try:
        print(require(args[0]))
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
