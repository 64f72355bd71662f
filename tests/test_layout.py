"""The floors of the house: each layer imports only layers below it (README, "Layout").

Read from the code's own import statements (top-level and inside functions), so a lazy
import that reaches up is caught too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: package -> the project packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "clikit": set(),
    "netlab": set(),
    "p4src": set(),
    "schedmodels": {"clikit", "p4src"},
    "bmv2": {"clikit", "netlab", "p4src"},
    "hostagent": {"clikit", "netlab", "p4src", "schedmodels", "controller"},
    "controller": {"clikit", "netlab", "p4src", "schedmodels", "bmv2"},
    "topologies": {"clikit", "netlab", "p4src", "schedmodels", "bmv2", "controller",
                   "hostagent"},
    "experiments": {"clikit", "netlab", "p4src", "schedmodels", "bmv2", "controller",
                    "hostagent", "topologies"},
    "benchmarks": {"clikit", "netlab", "p4src", "schedmodels", "bmv2", "controller",
                   "hostagent", "topologies", "experiments"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module that `path` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_floors(package: str) -> None:
    upward = []
    for path in sorted((REPO / package).rglob("*.py")):
        if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        bad = (imported_packages(path) & set(ALLOWED)) - ALLOWED[package] - {package}
        upward += [f"{path.relative_to(REPO)} imports {name}" for name in sorted(bad)]
    assert upward == []
