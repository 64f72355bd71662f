"""Locate the P4 toolchain (p4c, BMv2's simple_switch_grpc) on this machine.

p4c and BMv2 are not in Debian's or PyPI's registries, so users build them from
source, usually under /opt. Every part of the project that needs one of these
programs asks this module, so the search order and the error text are the same
everywhere (tests, `make p4`, launcher, topologies).
"""

from __future__ import annotations

import sys
from pathlib import Path

from netlab.capabilities import OVERRIDES, SEARCH_DIRS, find_program

__all__ = ["OVERRIDES", "SEARCH_DIRS", "ToolMissing", "find", "require"]

#: The one search order (override variable, PATH, /opt/*/bin), shared with the capabilities.
find = find_program


class ToolMissing(RuntimeError):
    """A toolchain program is not installed; the message says how to get it."""


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
    if args in (["-h"], ["--help"]):
        print(f"usage: python -m bmv2.toolchain {{{'|'.join(OVERRIDES)}}}\n\n"
              "Print where the program is installed, or say in one line how to get it.")
        return 0
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
