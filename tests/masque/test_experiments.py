"""The MASQUE experiments end to end between three namespaces (small runs), and their CLIs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.names import remains
from tests.conftest import TaggedRun

REPO = Path(__file__).resolve().parents[2]


def test_impairment_placement() -> None:
    from experiments.masque_common import directions
    from netlab.linkemu import parse_spec

    link = parse_spec("rate=5mbit,delay=50ms,loss=1.5%")
    assert directions(link, "client-egress") == (link, None)
    assert directions(link, "proxy-egress") == (None, link)
    assert directions(link, "both") == (link, link)
    with pytest.raises(ValueError, match="placement must be one of"):
        directions(link, "sideways")


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sequential_open_waits_for_each_answer(tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.masque_fcfs_rr", "--connections", "6",
         "--size", "2048", "--runs", "1", "--variants", "rr", "--sequential-open",
         "--congestion-control", "quic-go-reno", "--timeout", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=260, env=tagged_run.env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "tunnels open one after another's answer" in out.stdout
    data = json.loads((tmp_path / "masque_fcfs_rr.json").read_text())
    assert data["meta"]["sequential_open"] is True
    assert data["meta"]["congestion_control"] == "quic-go-reno"
    assert data["raw"]["rr"][0]["congestion_control"] == "quic-go-reno"  # the client ran it
    opened = [r["opened"] for r in sorted(data["raw"]["rr"][0]["records"],
                                          key=lambda r: r["conn"])]
    # each request waits for the previous answer: at least the 50 ms one-way delay apart
    assert all(b - a >= 0.045 for a, b in zip(opened, opened[1:], strict=False)), opened
    assert remains(tagged_run.tag) == []


def test_sequential_open_and_setup_first_exclude_each_other() -> None:
    out = subprocess.run([sys.executable, "-m", "hostagent.masque.workload", "--proxy",
                          "127.0.0.1:1", "--target", "127.0.0.1:2", "--sequential-open",
                          "--setup-first"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith(
        "--sequential-open does not go with --setup-first")


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(200)
def test_a_killed_experiment_removes_its_namespaces_and_processes(
        tmp_path: Path, tagged_run: TaggedRun) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.masque_fcfs_rr", "--connections", "8",
         "--size", "4096", "--runs", "3", "--timeout", "40", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=tagged_run.env)
    try:
        deadline = time.monotonic() + 60
        # namespaces, link emulator and the proxy, target and workload all started
        while time.monotonic() < deadline and sum(
                r.startswith("process") for r in remains(tagged_run.tag)) < 4:
            time.sleep(0.2)
        assert sum(r.startswith("process") for r in remains(tagged_run.tag)) >= 4
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    assert remains(tagged_run.tag) == []


@pytest.mark.parametrize("rr, fcfs, holds", [
    ([1.0, 1.0, 0.26], [0.97, 0.74, 0.88], False),  # median above, mean below
    ([0.9, 0.7, 0.8], [0.2, 0.3, 0.1], True),
    ([0.5, 0.5], [0.5, 0.5], False),
])
def test_rr_against_fcfs_needs_median_and_mean_above(rr: list[float], fcfs: list[float],
                                                       holds: bool) -> None:
    from experiments.masque_fcfs_rr import rr_against_fcfs

    verdict = rr_against_fcfs({"rr": {"on_time": rr}, "fcfs-activation": {"on_time": fcfs}})
    assert verdict is not None
    assert verdict.endswith(": holds" if holds else ": does not hold"), verdict
    assert rr_against_fcfs({"rr": {"on_time": rr}}) is None


def test_negative_open_gap_is_a_one_line_error() -> None:
    out = subprocess.run([sys.executable, "-m", "experiments.masque_fcfs_rr", "--open-gap",
                          "-1"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith("--open-gap must be >= 0")


def test_switch_takes_only_both_directions() -> None:
    out = subprocess.run([sys.executable, "-m", "experiments.masque_fcfs_rr", "--via", "switch",
                          "--impair", "client-egress"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith("--impair both")


@pytest.mark.parametrize("module", ["experiments.masque_fcfs_rr", "experiments.masque_nested"])
def test_bad_scheduler_is_a_one_line_error(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--variants", "wfq"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert "unknown scheduler(s) wfq" in out.stderr


@pytest.mark.parametrize("module", ["experiments.masque_fcfs_rr", "experiments.masque_nested"])
def test_fastpath_without_the_switch_is_a_one_line_error(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--fastpath", "on"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith("--fastpath goes with --via switch")


@pytest.mark.mininet
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_small_fcfs_rr_run_through_the_switch_with_and_without_the_fast_path(
        tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.masque_fcfs_rr", "--via", "switch", "--variants",
         "rr", "--runs", "1", "--connections", "4", "--size", "20000", "--timeout", "40",
         "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=240,
        env=tagged_run.env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads((tmp_path / "masque_fcfs_rr_switch.json").read_text())
    off, on = data["summary"]["rr, fast path off"], data["summary"]["rr, fast path on"]
    for row in (off, on):
        assert row["connections"] == 4 and row["runs"][0]["finished"] == 4, row
        assert row["mb_echoed"] == pytest.approx(4 * 2 * 20000 / 1e6)
        assert row["proxy_cpu_s"] is not None
    assert off["fastpath_streams"] == 0 and on["fastpath_streams"] == 4
    assert "proxy CPU s" in out.stdout
    assert remains(tagged_run.tag) == []


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(450)
def test_small_fcfs_rr_run(tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.masque_fcfs_rr", "--connections", "8",
         "--size", "4096", "--runs", "2", "--variants", "fcfs-activation,rr,fcfs",
         "--open-gap", "0.02", "--timeout", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=400, env=tagged_run.env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads((tmp_path / "masque_fcfs_rr.json").read_text())
    assert data["meta"]["impair"] == "client-egress" and data["meta"]["runs"] == 2
    assert set(data["summary"]) == {"fcfs-activation", "rr", "fcfs"}
    for variant, row in data["summary"].items():
        assert [r["finished"] for r in row["runs"]] == [8, 8], (variant, row)
        assert len(row["on_time"]) == 2 and row["all_finished_runs"] == 2
        for result in data["raw"][variant]:
            for record in result["records"]:  # latency counts from the tunnel's open
                assert 0 <= record["opened"] < record["opened"] + record["latency"] <= \
                    result["total_time"] + 1e-9
                assert record["opened"] >= 0.02 * record["conn"] - 0.005  # --open-gap
    assert (tmp_path / "masque_fcfs_rr.png").stat().st_size > 10_000
    table = re.search(r"^outer +runs .*seed all +client CPU$", out.stdout, re.MULTILINE)
    assert table, out.stdout
    assert re.search(r"^fcfs-activation .* 17% +~24 +\d+%$", out.stdout, re.MULTILINE)
    assert re.search(r"^rr .* 68% +~15 +\d+%$", out.stdout, re.MULTILINE)
    assert re.search(r"^RR above FCFS on time .* over 2 / 2 runs: (holds|does not hold)$",
                     out.stdout, re.MULTILINE)
    for row in data["summary"].values():
        assert all(0 < c <= 2.5 for c in row["client_cpu_share"])  # one thread (+ GC)
    assert remains(tagged_run.tag) == []


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_small_nested_run(tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.masque_nested", "--connections", "3",
         "--streams", "4", "--priorities", "3", "--timeout", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=240, env=tagged_run.env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads((tmp_path / "masque_nested.json").read_text())
    assert set(data["summary"]) == {"abs", "rr", "fcfs"}
    for variant, row in data["summary"].items():
        assert row["unfinished"] == 0, (variant, row)
        assert sorted(row["mean_by_priority"]) == ["1", "2", "3"]  # JSON keys
    assert (tmp_path / "masque_nested.png").stat().st_size > 10_000
    assert remains(tagged_run.tag) == []
