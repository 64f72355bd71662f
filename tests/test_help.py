"""`--help` works for every command a user can run: each console script and each module with
a `__main__` block prints its usage and exits 0 (an unescaped `%` in an argparse help
string, for one, crashes `--help` only, so nothing else would notice)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmarks", "bmv2", "clikit", "controller", "experiments", "hostagent", "netlab",
            "p4src", "schedmodels", "topologies")
MAIN_GUARD = re.compile(r'^if __name__ == "__main__":', re.M)


def runnable_modules() -> list[str]:
    """Dotted names of the modules that run as `python -m NAME`."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if MAIN_GUARD.search(path.read_text()):
                rel = path.relative_to(REPO).with_suffix("")
                parts = rel.parts[:-1] if rel.name == "__main__" else rel.parts
                found.append(".".join(parts))
    return found


def test_runnable_modules_are_found() -> None:
    modules = runnable_modules()
    assert "topologies.masque_proxy" in modules and "experiments.demo" in modules
    assert "benchmarks" in modules


@pytest.mark.parametrize("module", runnable_modules())
def test_module_help_exits_zero(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in (done.stdout + done.stderr).lower()
