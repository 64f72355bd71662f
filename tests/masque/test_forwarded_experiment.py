"""experiments.forwarded_mode: its command line, what it reads out of a run, and a small run
through the P4 switch (root and Mininet) in which forwarded mode in the switch leaves the
proxy host no client packet to forward."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from experiments import forwarded_mode as fm
from hostagent.masque import proxy_cli, workload
from netlab.names import remains
from tests.conftest import TaggedRun

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv,message", [
    (["--variants", "tunnel-dgram,wfq"], "unknown variant(s) wfq"),
    (["--variants", ","], "unknown variant(s) (none)"),
    (["--workloads", "video"], "unknown workload(s) video"),
    (["--losses", "0,lots"], "--losses: '0,lots' is not"),
    (["--losses", "100"], "rates in [0, 100)"),
    (["--link", "delay=50ms,loss=1%"], "give the loss with --losses"),
    (["--link", "speed=3"], "--link:"),
    (["--classes", "0,-1"], "--classes: '0,-1'"),
    (["--connections", "0"], "--connections must be >= 1"),
    (["--bulk-size", "0"], "--bulk-size must be >= 1"),
    (["--max-connection-ids", "1"], "--max-connection-ids must be >= 2"),
    (["--outer-scheduler", "wfq"], "unknown scheduler(s) wfq"),
    (["--timeout", "0"], "--timeout must be > 0"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        fm.main(argv)
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m experiments.forwarded_mode: error:"), last
    assert message in last, last


def _plan(argv: list[str]) -> tuple[fm.Plan, Any]:
    parser = fm.build_parser()
    args = parser.parse_args(argv)
    return fm.parse_plan(parser, args), args


def test_the_default_matrix_is_every_variant_workload_and_loss_grouped_by_loss() -> None:
    plan, args = _plan([])
    assert len(plan.runs) == 4 * 3 * 3
    assert [r.loss for r in plan.runs] == sorted(r.loss for r in plan.runs)
    assert plan.classes == [0, 10] and plan.link.loss == 0 and plan.link.rate_bps == 5_000_000
    assert fm.with_loss(plan.link, 1.5).loss == pytest.approx(0.015)
    assert len({r.label for r in plan.runs}) == len(plan.runs)
    assert (args.connections, args.size, args.bulk_size) == (100, 10240, 1_000_000)


def test_each_variant_gets_its_proxy_and_client_flags() -> None:
    plan, args = _plan(["--losses", "1.5", "--workloads", "echo,bulk"])
    by = {(r.workload, r.variant.key): r for r in plan.runs}
    soft = by[("echo", "fwd-soft")]
    assert "--no-switch-forwarding" in fm.proxy_args(soft.variant, args)
    assert fm.proxy_args(soft.variant, args)[-2:] == ["--max-connection-ids", "2"]
    switch_args = fm.proxy_args(by[("echo", "fwd-switch")].variant, args)
    assert "--quic-forwarding" in switch_args and "--no-switch-forwarding" not in switch_args
    tunnel = fm.proxy_args(by[("echo", "tunnel-stream")].variant, args)
    assert tunnel == ["--scheduler", "abs"]
    echo = fm.workload_args(by[("echo", "tunnel-stream")], args)
    assert echo[echo.index("--mode") + 1] == "stream" and "--quic-forwarding" not in echo
    assert echo[echo.index("--connections") + 1] == "100" and "--setup-first" not in echo
    bulk = fm.workload_args(by[("bulk", "fwd-switch")], args)
    assert "--quic-forwarding" in bulk and "--setup-first" in bulk
    assert bulk[bulk.index("--size") + 1] == "1000000"
    assert bulk[bulk.index("--classes") + 1] == "0,10"
    plan, args = _plan(["--losses", "0", "--workloads", "echo-setup"])
    split = fm.workload_args(plan.runs[0], args)
    assert "--setup-first" in split and split[split.index("--size") + 1] == "10240"


def test_the_proxys_counters_and_the_switchs_total_are_read_back() -> None:
    lines = ["INFO tunnel close ...",
             "INFO counters: {'tunnels_opened': 2, 'up_packets': 10, 'up_short_packets': 3, "
             "'forwarded_down_packets': 7}; refused by status: {}; fast path: {'granted': 0}; "
             "switch forwarding: {'installed': 8, 'removed': 8, 'declined': 0, 'failed': 0}"]
    counters = fm.proxy_counters(lines)
    assert counters["up_short_packets"] == 3 and counters["forwarded_down_packets"] == 7
    assert counters["switch_table"]["installed"] == 8
    assert fm.proxy_counters(["no counters here"]) == {}
    stats = {"switches": [{"counters": [
        {"name": "drops", "index": 0, "packets": "5"},
        {"name": "quic_forwarded", "index": 0, "label": "forwarded mode, all mappings",
         "packets": "1234", "bytes": "99"}]}]}
    assert fm.switch_forwarded(stats) == 1234
    assert fm.switch_forwarded({}) == 0


def _record(conn: int, priority: int, latency: float | None) -> dict[str, Any]:
    return {"conn": conn, "stream": 0, "priority": priority, "stream_priority": 0,
            "size": 1_000_000, "latency": latency, "error": None if latency else "late",
            "fastpath": False, "forwarding": True}


def _result() -> dict[str, Any]:
    return {
        "records": [_record(0, 0, 2.0), _record(1, 10, 4.0)],
        "tunnels": [{"conn": 0, "sent": 100, "fwd_sent": 90, "via_proxy": 12,
                     "fwd_received": 80},
                    {"conn": 1, "sent": 50, "fwd_sent": 40, "via_proxy": 10,
                     "fwd_received": 30}],
        "tunnels_at_setup": [{"conn": 0, "sent": 10, "fwd_sent": 0, "via_proxy": 10},
                             {"conn": 1, "sent": 10, "fwd_sent": 0, "via_proxy": 10}],
        "total_time": 4.0, "setup_time": 0.5,
        "cpu_s": {"mp-proxy": 0.4, "switch": 2.0, "mp-controller": 0.1},
        "transfer_cpu_s": {"mp-proxy": 0.2},
        "proxy": {"up_packets": 20, "down_packets": 20, "up_short_packets": 0,
                  "down_short_packets": 2, "forwarded_up_packets": 0,
                  "forwarded_down_packets": 1, "switch_table": {"installed": 4}},
        "switch_forwarded": 240}


def test_a_run_is_summarised_per_class_with_cpu_per_mb_and_relayed_packets() -> None:
    result = _result()
    s = fm.summarize(result)
    assert s["finished"] == 2 and s["connections"] == 2 and s["forwarding"] == 2
    assert s["mb_echoed"] == pytest.approx(4.0)
    assert s["cpu_s_per_mb"]["mp-proxy"] == pytest.approx(0.1)
    assert s["transfer_cpu_s_per_mb"]["mp-proxy"] == pytest.approx(0.05)
    assert s["by_class"]["0"]["mean_s"] == 2.0 and s["by_class"]["10"]["mean_s"] == 4.0
    assert s["by_class"]["0"]["mbit_s"] == pytest.approx(4.0)
    assert s["mbit_s"] == pytest.approx(2 * 8 / 4.0)
    r = s["relayed"]
    assert r["proxy_host_inner"] == 3 and r["switch"] == 240
    # after the set-up the tunnels carried 0 packets up and 2 down
    assert (r["tunnel_after_setup_up"], r["tunnel_after_setup_down"]) == (0, 2)
    assert r["tunnel_short_after_setup_up"] == 0
    table = fm.format_table({"x": s}, [])
    assert "proxy s/MB" in table
    # set-up CPU: (0.4 - 0.2) s over 2 tunnels
    assert s["setup_cpu_ms_per_tunnel"]["mp-proxy"] == pytest.approx(100.0)


def _bar_row(transfer_cpu: float, after_setup: int) -> dict[str, Any]:
    return {"transfer_cpu_s_per_mb": {"mp-proxy": transfer_cpu},
            "setup_cpu_ms_per_tunnel": {"mp-proxy": 12.0},
            "relayed": {"tunnel_after_setup_up": after_setup, "tunnel_after_setup_down": 0,
                        "tunnel_short_after_setup_up": after_setup, "tunnel_short_down": 0,
                        "software_up": 0, "software_down": 0, "switch": 500}}


@pytest.mark.parametrize("switch_cpu, relayed, met", [
    (0.010, 0, True),    # 1/30 of the cheaper tunnelled mode, nothing relayed
    (0.025, 0, False),   # 1/12
    (0.010, 1, False),   # one packet in the tunnel after the set-up
])
def test_the_bar_compares_the_transfer_phase_with_the_cheaper_tunnelled_mode(
        switch_cpu: float, relayed: int, met: bool) -> None:
    plan, _ = _plan(["--losses", "1.5", "--workloads", "echo,echo-setup"])
    runs = {}
    for r in plan.runs:
        cpu = {"tunnel-dgram": 0.3, "tunnel-stream": 0.45, "fwd-soft": 0.1}.get(
            r.variant.key, switch_cpu)
        runs[r.label] = _bar_row(cpu, relayed if r.variant.key == "fwd-switch" else 0)
    checks = fm.bar_check(runs, plan.runs)
    assert [(c["workload"], c["loss"]) for c in checks] == [("echo-setup", 1.5)]  # no echo
    assert checks[0]["tunnelled_cpu_s_per_mb"] == 0.3 and checks[0]["met"] is met
    assert checks[0]["share"] == pytest.approx(switch_cpu / 0.3)
    assert ("met" if met else "NOT") in fm.format_bar(checks)


class _FakeTopo:
    def __init__(self) -> None:
        self.value = 0.0

    def cpu_seconds(self, label: str) -> float:
        return self.value


def test_the_cpu_sampler_interpolates_between_readings() -> None:
    sampler = fm.CpuSampler(_FakeTopo(), ["p"])
    sampler.samples = [(10.0, {"p": 1.0}), (11.0, {"p": 2.0}), (12.0, {"p": 4.0})]
    assert sampler.at(10.5)["p"] == pytest.approx(1.5)
    assert sampler.between(10.5, 11.5)["p"] == pytest.approx(1.5)
    assert sampler.at(5.0)["p"] == 1.0 and sampler.at(20.0)["p"] == 4.0


def test_mp_proxy_software_only_forwarding_needs_quic_forwarding(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        proxy_cli.main(["--no-switch-forwarding"])
    assert exc.value.code == 2
    assert "--no-switch-forwarding goes with --quic-forwarding" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--classes", "a,b"], "--classes: 'a,b' is not"),
    (["--classes", "0,10", "--priorities", "3"], "exclude each other"),
])
def test_workload_classes_are_checked(argv: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        workload.main(["--proxy", "127.0.0.1:4433", "--target", "127.0.0.1:4434", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_workload_classes_take_turns() -> None:
    assert [workload.class_of(c, [0, 10]) for c in range(4)] == [0, 10, 0, 10]


@pytest.mark.mininet
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_small_run_through_the_switch(tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.forwarded_mode", "--losses", "1", "--variants",
         "tunnel-dgram,fwd-soft,fwd-switch", "--connections", "4", "--size", "20000",
         "--bulk-size", "150000", "--timeout", "40", "--out", str(tmp_path),
         "--workloads", "echo,bulk"],
        capture_output=True, text=True, cwd=REPO, timeout=360, env=tagged_run.env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "[6/6] bulk, loss 1%, forwarded, switch" in out.stdout
    data = json.loads((tmp_path / "forwarded_mode.json").read_text())
    s = data["summary"]
    assert len(s) == 6
    for label, row in s.items():
        assert row["finished"] == row["connections"], (label, row["errors"])
        assert row["cpu_s"]["mp-proxy"] is not None and row["cpu_s"]["switch"] is not None
        assert set(row["by_class"]) == {"0", "10"}
        assert row["mappings_left"] == 0, label  # the proxy removed its mappings
    for workload_name in ("echo", "bulk"):
        tunnel = s[f"{workload_name}, loss 1%, tunnelled, datagram"]["relayed"]
        soft = s[f"{workload_name}, loss 1%, forwarded, proxy software"]
        switch = s[f"{workload_name}, loss 1%, forwarded, switch"]
        # tunnelled: the proxy host relays every inner packet, the switch forwards none
        assert tunnel["switch"] == 0 and tunnel["tunnel_short_down"] > 0
        # forwarded in software: the switch has no mapping, the proxy host forwards
        assert soft["relayed"]["switch"] == 0 and soft["relayed"]["software_down"] > 0
        assert soft["switch_table"] is None and soft["forwarding"] == soft["connections"]
        # forwarded by the switch: the proxy acknowledges a mapping only once the switch
        # has it, so no client packet is forwarded on the proxy host
        assert switch["relayed"]["switch"] > 0 and switch["relayed"]["software_up"] == 0
        assert switch["switch_table"]["installed"] > 0
        assert switch["switch_table"]["failed"] == 0
    assert (tmp_path / "forwarded_mode.png").stat().st_size > 10_000
    assert "host relayed" in out.stdout
    assert remains(tagged_run.tag) == []


def test_a_saved_run_is_summarised_again_with_from_json(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    switch = _result()
    # one short-header packet tunnelled after the set-up, and a late handshake packet
    switch["tunnels"][0].update(fwd_tunnelled_short=3, sent=101)
    switch["tunnels_at_setup"][0]["fwd_tunnelled_short"] = 2
    tunnel = _result()
    tunnel["transfer_cpu_s"] = {"mp-proxy": 2.0}
    raw = {"bulk, loss 0%, forwarded, switch": switch,
           "bulk, loss 0%, tunnelled, datagram": tunnel,
           "bulk, loss 0%, forwarded, proxy software": {"error": "crashed"}}
    meta = {"link": "rate=5mbit,delay=50ms", "losses": "0", "emulation": "userspace",
            "target": "soft", "connections": 100, "size": 10240, "bulk_connections": 2,
            "bulk_size": 1_000_000, "classes": [0, 10], "outer_scheduler": "abs"}
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"meta": meta, "summary": {}, "raw": raw}))
    assert fm.main(["--from-json", str(saved), "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "forwarded_mode.json").read_text())
    assert set(data["summary"]) == {"bulk, loss 0%, forwarded, switch",
                                    "bulk, loss 0%, tunnelled, datagram"}
    [check] = data["bar"]
    # short-header: 1 up after the set-up, 2 down (the proxy's count), 1 in software
    assert check["relayed_after_setup"] == 1 + 2 + 1
    assert check["long_header_after_setup"] == 1 + 2 - 1
    assert check["met"] is False
    assert "NOT" in capsys.readouterr().out


def test_from_json_of_something_else_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    out = subprocess.run([sys.executable, "-m", "experiments.forwarded_mode", "--from-json",
                          str(bad)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert "not a forwarded_mode result" in out.stderr.strip().splitlines()[-1]
