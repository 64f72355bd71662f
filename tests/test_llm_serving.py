"""experiments/llm_serving.py without root: its arguments, tables and results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import llm_serving as ls
from hostagent.llm.wire import HEADER_SIZE
from hostagent.llm.workload import CLASS_BY_NAME


@pytest.mark.parametrize("argv,message", [
    (["--scheduler", "edf,nope"], "--scheduler: unknown nope"),
    (["--scheduler", "edf,edf"], "named twice"),
    (["--requests", "0"], "--requests must be >= 1"),
    (["--link", "rate=fast"], "--link:"),
    (["--bottleneck", "2mbit", "--target", "bmv2"], "needs --target soft"),
    (["--bottleneck", "lots"], "--bottleneck:"),
    (["--fastpath", "maybe"], "--fastpath"),
    (["--host-link", "t1=delay=5ms"], "expected HOST:SPEC"),
    (["--host-link", "t2:delay=5ms"], "no host 't2'"),
    (["--host-link", "t1:delay=soon"], "--host-link t1:"),
    (["--host-link", "client:delay=5ms"], "given twice"),  # --link has its default
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ls.main(argv)
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("llm_serving: error:") and message in last, last


def _rows() -> list[dict[str, object]]:
    def row(i: int, cls: str, latency: float | None) -> dict[str, object]:
        size = HEADER_SIZE + CLASS_BY_NAME[cls].size
        return {"index": i, "traffic_class": cls, "latency": latency, "reset": latency is None,
                "on_time": latency is not None and latency <= CLASS_BY_NAME[cls].deadline_s,
                "received": size if latency is not None else 0}

    return [row(0, "realtime", 0.2), row(1, "realtime", 1.5), row(2, "free", 0.5),
            row(3, "long", None), row(4, "long", 3.0)]


def test_summary_completion_on_time_and_percentiles() -> None:
    summary = ls.summarize_rows(_rows())  # type: ignore[arg-type]
    rt, long = summary["realtime"], summary["long"]
    assert (rt["requests"], rt["completed"], rt["on_time"]) == (2, 1.0, 0.5)
    assert rt["p50"] == pytest.approx(0.85) and rt["p99"] == pytest.approx(1.487)
    assert (long["completed"], long["p50"], long["p99"]) == (0.5, 3.0, 3.0)
    assert ls.percentile([], 50) is None
    # requests sent whole, answers as received
    sent = sum(HEADER_SIZE + CLASS_BY_NAME[c].size
               for c in ("realtime", "realtime", "free", "long", "long"))
    got = sum(int(r["received"]) for r in _rows())  # type: ignore[call-overload]
    assert ls.exchanged_bytes(_rows()) == sent + got  # type: ignore[arg-type]


def test_tables_and_results_files(tmp_path: Path) -> None:
    rows = _rows()
    on = ls.VariantResult("edf", True, rows, 2.0, 0.02, granted=True, flow="flow 8 via x:1",
                          stream_ranks=4, summary=ls.summarize_rows(rows))  # type: ignore[arg-type]
    off = ls.VariantResult("edf", False, rows, 2.5, 0.2,
                           summary=ls.summarize_rows(rows))  # type: ignore[arg-type]
    text = ls.format_tables([off, on])
    assert "edf, fast path on      realtime     2  100%      50%" in text
    assert "switch, 4 ranks" in text and "proxy  " in text
    assert f"{0.2 / off.mb:.3f}" in text
    png = ls.write_results([off, on], tmp_path, {"requests": 5, "link": "delay=5ms"})
    assert png.stat().st_size > 0
    data = json.loads((tmp_path / "llm_serving.json").read_text())
    assert data["variants"]["edf, fast path on"]["stream_ranks"] == 4
    assert data["variants"]["edf, fast path off"]["proxy_cpu_s_per_mb"] == pytest.approx(
        0.2 / off.mb)


def test_repeated_runs_pool_their_requests_and_keep_each_runs_share() -> None:
    rows = _rows()
    one = ls.VariantResult("edf", True, rows, 2.0, 0.02, granted=True, shims_sent=10,
                           summary=ls.summarize_rows(rows))  # type: ignore[arg-type]
    late = [{**r, "latency": 9.0, "on_time": False} for r in rows]
    two = ls.VariantResult("edf", True, late, 3.0, 0.03, granted=True, shims_sent=5,
                           summary=ls.summarize_rows(late))  # type: ignore[arg-type]
    pooled = ls.pool([one, two])
    assert len(pooled.rows) == 10 and {r["run"] for r in pooled.rows} == {1, 2}
    assert pooled.seconds == 5.0 and pooled.shims_sent == 15 and pooled.granted
    assert pooled.proxy_cpu_s == pytest.approx(0.05)
    assert pooled.summary["realtime"]["on_time"] == pytest.approx(0.25)  # 1 of 4
    assert pooled.per_run_on_time == [{"realtime": 0.5, "free": 1.0, "long": 0.5},
                                      {"realtime": 0.0, "free": 0.0, "long": 0.0}]
    text = ls.format_tables([pooled])
    assert "per run" in text
    assert "edf, fast path on      realtime     4  100%      25%     0-50%" in text
    assert ls.pool([one]).per_run_on_time == [{"realtime": 0.5, "free": 1.0, "long": 0.5}]
