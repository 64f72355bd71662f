"""An independent client: p4runtime-shell (p4lang's own) drives the switch through the
common workflow and a few error paths (§12, §13, §9.1, §9.3.2).

p4runtime-shell pins an old protobuf, so it lives in its own venv
(`make p4runtime-shell` makes .venv-p4runtime-shell; or set MP_P4RUNTIME_SHELL to
its python); skipped with that reason where it is absent."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bmv2 import launcher
from p4src.pipeline import BMV2_JSON, P4INFO
from tests.p4runtime.conftest import DEVICE

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("shell_session.py")


def shell_python() -> Path | None:
    given = os.environ.get("MP_P4RUNTIME_SHELL")
    path = Path(given) if given else REPO / ".venv-p4runtime-shell" / "bin" / "python"
    return path if path.exists() else None


@pytest.mark.spec("§12")
@pytest.mark.spec("§13")
@pytest.mark.spec("§9.1.2")
@pytest.mark.spec("§9.1.6")
@pytest.mark.spec("§9.3.2")
def test_p4runtime_shell_session(switch: launcher.SwitchProcess,
                                 next_election: Callable[[], int],
                                 expect: Callable[..., str]) -> None:
    python = shell_python()
    if python is None:
        pytest.skip("p4runtime-shell is not installed: `make p4runtime-shell` (its own venv)")
    done = subprocess.run([str(python), str(SCRIPT), switch.config.grpc_addr, str(DEVICE),
                           str(next_election()), str(P4INFO), str(BMV2_JSON)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["insert"] == "OK"
    assert seen["insert_again"] == "ALREADY_EXISTS"
    assert seen["read"] == ["07"]
    assert seen["defaultonly_entry"] == expect("PERMISSION_DENIED", "defaultonly")
    assert seen["delete_missing"] == "NOT_FOUND"
    assert (seen["rank_10"], seen["rank_11"]) == ("OK", "OK")
    observed = {(11,): "filtered", (10, 11): "unfiltered"}.get(
        tuple(seen["read_priority_11"]), str(seen["read_priority_11"]))
    assert observed == expect("filtered", "priority")
    assert seen["counter_cells"] == 8
    assert seen["counter_past_end"] == expect("OUT_OF_RANGE", "counter")
