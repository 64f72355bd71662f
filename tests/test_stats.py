"""schedmodels.stats: the one percentile every table uses (experiments, port model, LLM report)."""

from __future__ import annotations

import statistics

import pytest

from schedmodels.stats import percentile, quartiles


@pytest.mark.parametrize("q", [1, 25, 50, 90, 95, 99])
def test_percentile_is_statistics_inclusive_method(q: int) -> None:
    values = [0.3, 7.0, 1.5, 2.25, 9.5, 4.0, 4.0, 0.1, 12.0]
    expected = statistics.quantiles(values, n=100, method="inclusive")[q - 1]
    assert percentile(values, q) == pytest.approx(expected)


def test_edges_and_quartiles() -> None:
    assert percentile([], 50) is None and quartiles([]) is None
    assert percentile([2.0], 99) == 2.0 and quartiles([2.0]) == (2.0, 2.0, 2.0)
    assert percentile([1.0, 3.0], 50) == 2.0
    assert quartiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)
