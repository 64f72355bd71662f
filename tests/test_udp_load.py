"""The benchmark's search for the highest rate under 1% loss (benchmarks/udp_load.py),
against a fake way with a known capacity: no network, no Go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import udp_load


def fake_way(monkeypatch: pytest.MonkeyPatch, capacity: float,
             flaky: frozenset[float] = frozenset()) -> list[float]:
    """Trials lose nothing up to `capacity` packets/s and half beyond; a rate in `flaky`
    loses 5% on its first trial only. The offered rates, in order."""
    offered: list[float] = []

    def trial(net: Any, binary: Path, way: udp_load.Way, rate: float,
              seconds: float) -> udp_load.Trial:
        loss = 0.0 if rate <= capacity else 0.5
        if rate in flaky and rate not in offered:
            loss = 0.05
        offered.append(rate)
        report = {"loss": loss, "sent_pps": rate, "carried_pps": rate * (1 - loss),
                  "rtt_p50_us": 100.0, "received": int(rate * seconds * (1 - loss))}
        return udp_load.Trial(rate, report, {})

    monkeypatch.setattr(udp_load, "trial", trial)
    return offered


def search(capacity: float, monkeypatch: pytest.MonkeyPatch,
           flaky: frozenset[float] = frozenset()) -> tuple[float, list[float]]:
    offered = fake_way(monkeypatch, capacity, flaky)
    best = udp_load.max_rate(None, Path("masquego"), udp_load.Way("fake", []))  # type: ignore[arg-type]
    return best.offered, offered


def test_doubles_then_bisects_below_the_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    best, offered = search(5000, monkeypatch)
    # every lossy trial is tried twice; three bisections between 4000 and 8000
    assert offered == [1000, 2000, 4000, 8000, 8000, 6000, 6000, 5000, 5500, 5500]
    assert best == 5000


def test_halves_when_even_the_start_is_too_much(monkeypatch: pytest.MonkeyPatch) -> None:
    best, offered = search(300, monkeypatch)
    assert offered[:5] == [1000, 1000, 500, 500, 250]
    assert offered[5:] == [375, 375, 312.5, 312.5, 281.25]
    assert best == 281.25


def test_stops_at_the_highest_rate_it_offers(monkeypatch: pytest.MonkeyPatch) -> None:
    best, _ = search(float("inf"), monkeypatch)
    assert best == udp_load.MAX_RATE


def test_a_lossy_trial_is_repeated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    best, offered = search(5000, monkeypatch, flaky=frozenset({2000.0}))
    assert offered[:3] == [1000, 2000, 2000] and best >= 4000


def test_no_rate_is_good_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="even at 125"):
        search(100, monkeypatch)


def test_the_side_by_side_rows_carry_ratios_to_masque_go() -> None:
    from benchmarks.bench_interop import Result, report

    def t(pps: float, p50: float, cpu: dict[str, float]) -> udp_load.Trial:
        return udp_load.Trial(pps, {"carried_pps": pps, "rtt_p50_us": p50, "rtt_p99_us": 2 * p50,
                                    "received": int(3 * pps), "loss": 0.0}, cpu)

    base = t(1000, 60, {})
    results = [
        Result(udp_load.Way("masque-go proxy", []), t(8000, 300, {}),
               t(4000, 360, {"proxy": 0.6, "client": 0.3}), base),
        Result(udp_load.Way("mp-proxy datagram", []), t(2000, 900, {}),
               t(1000, 660, {"proxy": 0.6, "client": 0.3}), base),
    ]
    rows = {r.measure: r.ours for r in report(results)}
    assert rows["max pkt/s at <1% loss"] == "8,000 / 2,000 (x masque-go: 1.00 / 0.25)"
    assert rows["added RTT at half that load, us: p50 (p99)"] == (
        "300 (600) / 600 (1,200) (x masque-go: 1.00 / 2.00)")
    # the same CPU seconds for a quarter of the megabytes: 4x per MB
    assert rows["proxy (switch) CPU s per MB echoed at half load"].endswith(
        "(x masque-go: 1.00 / 4.00)")
