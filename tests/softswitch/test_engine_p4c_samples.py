"""p4c's own STF packet tests for v1model, compiled with the installed p4c and run on the
engine: a check of the engine's semantics against expectations written for BMv2.

The samples were picked so that together they use every JSON construct (primitive,
expression op, operand type, match kind, hash algorithm, stacks, unions, const
entries, direct counters, hit/miss next nodes) that any passing sample uses. Skipped
where p4c or p4c's source tree (for testdata/) is not on this machine; compiled JSONs
are cached in pytest's cache directory, keyed by p4c and the sample."""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from bmv2 import toolchain
from bmv2.softswitch.engine import Engine
from tests.softswitch import stf

pytestmark = pytest.mark.slow

SAMPLES = [
    "header-stack-ops-bmv2", "checksum2-bmv2", "issue1049-bmv2", "issue1097-2-bmv2",
    "issue3488-bmv2", "gauntlet_hdr_set_valid-bmv2", "gauntlet_index_1-bmv2",
    "union-valid-bmv2", "array-copy-bmv2", "gauntlet_exit_combination_19-bmv2",
    "issue1566-bmv2", "saturated-bmv2", "arith5-bmv2", "default_action-bmv2",
    "flag_lost-bmv2", "gauntlet_mux_hdr-bmv2", "issue1755-1-bmv2", "issue1768-bmv2",
    "issue983-bmv2", "runtime-index-2-bmv2", "table-entries-exact-ternary-bmv2",
    "table-entries-range-bmv2", "table-entries-lpm-bmv2", "ternary2-bmv2",
    "stack_complex-bmv2", "subparser-with-header-stack-bmv2", "runtime-index-bmv2",
    "predication_issue_2",
]


def _samples_dir(p4c: Path | None) -> Path | None:
    candidates = [os.environ.get("MP_P4C_SAMPLES", "")]
    if p4c is not None:
        root = p4c.resolve().parent.parent
        candidates += [str(root / "src" / "p4c" / "testdata" / "p4_16_samples"),
                       str(root / "testdata" / "p4_16_samples")]
    candidates.append("/opt/p4/src/p4c/testdata/p4_16_samples")
    # a p4c source tree built under /opt (e.g. /opt/src/p4c-1.2.4.8)
    candidates += sorted(glob.glob("/opt/*/p4c*/testdata/p4_16_samples"))
    candidates += sorted(glob.glob("/opt/p4c*/testdata/p4_16_samples"))
    for c in candidates:
        if c and Path(c, "arith5-bmv2.stf").exists():
            return Path(c)
    return None


P4C = toolchain.find("p4c")
SAMPLES_DIR = _samples_dir(P4C)


@pytest.fixture(scope="module")
def compiled(request: pytest.FixtureRequest) -> Path:
    if P4C is None:
        pytest.skip("p4c is not installed (see `python -m bmv2.toolchain p4c`)")
    if SAMPLES_DIR is None:
        pytest.skip("p4c's testdata/p4_16_samples not found (set MP_P4C_SAMPLES)")
    return Path(request.config.cache.mkdir("p4c-samples"))


def _compile(cache: Path, name: str) -> Path:
    assert P4C is not None and SAMPLES_DIR is not None
    source = SAMPLES_DIR / f"{name}.p4"
    digest = hashlib.sha256(source.read_bytes() + str(P4C.stat().st_mtime).encode())
    out = cache / f"{name}-{digest.hexdigest()[:16]}"
    target = out / f"{name}.json"
    if not target.exists():
        out.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([str(P4C), "--target", "bmv2", "--arch", "v1model", "-o",
                               str(out), str(source)], capture_output=True, text=True,
                              cwd=SAMPLES_DIR, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"p4c could not compile {name}: {done.stderr.strip()[-300:]}")
    return target


@pytest.mark.parametrize("name", SAMPLES)
def test_p4c_sample(compiled: Path, name: str) -> None:
    assert SAMPLES_DIR is not None
    engine = Engine(_compile(compiled, name).read_bytes())
    result = stf.run(engine, (SAMPLES_DIR / f"{name}.stf").read_text())
    assert result.mismatches() == []
