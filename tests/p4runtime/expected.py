"""Where a target departs from the P4Runtime spec: the expected-result table of the suite.

A case asserts the spec's outcome unless this table records another for the target it
runs against; then it asserts that target's recorded behaviour, so a departure is
still checked (it would fail if the target changed), never skipped.
docs/p4runtime-conformance.md lists every entry (a test checks that it does).

Outcomes are short strings: a status name ("INVALID_ARGUMENT"), "ended:CODE" for a
stream the server ended, or a word a case defines ("forwarded", "dropped", ...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Departure:
    """What `target` does instead of what the spec asks, and why we know."""

    observed: str
    note: str


#: case id ("test_name" or "test_name:part") -> target -> departure
DEPARTURES: dict[str, dict[str, Departure]] = {}


def expected(case: str, target: str, spec: str) -> str:
    """The outcome to assert for `case` on `target`: the spec's unless recorded."""
    departure = DEPARTURES.get(case, {}).get(target)
    return spec if departure is None else departure.observed
