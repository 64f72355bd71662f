"""docs/p4runtime-conformance.md lists every recorded departure of a target from the
P4Runtime spec (tests/p4runtime/expected.py), and nothing that is not recorded."""

from __future__ import annotations

import re
from pathlib import Path

from tests.p4runtime.expected import DEPARTURES

DOC = Path(__file__).resolve().parents[1] / "docs" / "p4runtime-conformance.md"


def documented() -> set[tuple[str, str]]:
    """(case, target) of each row of the doc's departures tables: | `case` | target | ..."""
    rows = set()
    for line in DOC.read_text().splitlines():
        m = re.match(r"\|\s*`([A-Za-z0-9_:]+)`\s*\|\s*(\w+)\s*\|", line)
        if m:
            rows.add((m.group(1), m.group(2)))
    return rows


def test_every_departure_is_documented_and_every_documented_one_recorded() -> None:
    recorded = {(case, target) for case, by_target in DEPARTURES.items()
                for target in by_target}
    rows = documented()
    assert recorded - rows == set(), "recorded in expected.py but missing from the doc"
    assert rows - recorded == set(), "in the doc but not recorded in expected.py"


def test_every_recorded_case_exists() -> None:
    suite = Path(__file__).resolve().parent / "p4runtime"
    source = "\n".join(p.read_text() for p in suite.glob("test_*.py"))
    for case in DEPARTURES:
        name, _, part = case.partition(":")
        assert f"def {name}(" in source, f"{case}: no such case in tests/p4runtime"
        assert not part or f'"{part}"' in source, f"{case}: no part {part!r} in its case"
