"""Build our masque-go program (tests/interop/masquego) into .build/, outside git.

`go build` compiles from the Go module cache (`go mod download`, which
scripts/bootstrap.sh runs where Go is installed); nothing upstream is vendored.
Tests and benchmarks call `build()` and skip with its reason where Go or the
modules are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "interop" / "masquego"
BUILD_DIR = REPO / ".build"
BINARY = BUILD_DIR / "masquego"


@dataclass(frozen=True)
class Build:
    """The binary, or why there is none (`missing`: Go or its modules absent; `error`:
    our program did not compile)."""

    binary: Path | None
    missing: str = ""
    error: str = ""


def _go() -> str | None:
    found = shutil.which("go")
    if found is None and Path("/usr/local/go/bin/go").exists():
        found = "/usr/local/go/bin/go"
    return found


def build(timeout: float = 600.0) -> Build:
    """`go build` the program (incremental: seconds once built); never raises."""
    go = _go()
    if go is None:
        return Build(None, missing="Go toolchain not found (`go` on PATH)")
    env = {**os.environ, "GOFLAGS": "-mod=readonly"}
    try:
        fetched = subprocess.run([go, "mod", "download"], cwd=SOURCE, env=env,
                                 capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Build(None, missing="`go mod download` timed out")
    if fetched.returncode != 0:
        first = (fetched.stderr.strip().splitlines() or ["?"])[-1]
        return Build(None, missing=f"Go modules of tests/interop/masquego not available "
                     f"(run scripts/bootstrap.sh): {first}")
    BUILD_DIR.mkdir(exist_ok=True)
    try:
        built = subprocess.run([go, "build", "-o", str(BINARY), "."], cwd=SOURCE, env=env,
                               capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Build(None, error="`go build` timed out")
    if built.returncode != 0:
        return Build(None, error=f"`go build` failed: {built.stderr.strip()}")
    return Build(BINARY)
