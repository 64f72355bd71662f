"""The Tofino (TNA) program p4src/tna/: its committed bf-p4c outputs match its sources (or
the test says why there are none), it passes p4c's front and mid end where p4test and the
Tofino include files are installed, it shares the v1model program's constants and mirrors
its tables, and the build helper hashes and summarises what it should."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bmv2 import p4build, toolchain
from p4src import pipeline, tofino

TNA_SOURCES = {path.name: path.read_text()
               for path in (p4build.REPO / p4build.TNA_DIR).rglob("*.p4")}
TNA_TEXT = "\n".join(TNA_SOURCES.values())
V1MODEL_TEXT = "\n".join(path.read_text() for path in
                         [p4build.REPO / "p4src" / "masque_pifo.p4",
                          *sorted((p4build.REPO / "p4src" / "include").glob("*.p4"))])


def test_tna_outputs_are_from_the_current_sources() -> None:
    recorded = p4build.recorded_hash(hash_file=p4build.TNA_HASH_FILE)
    if recorded is None:
        compiler = p4build.find_tofino_compiler()
        if compiler is not None:
            pytest.skip(f"p4src/tna/ has never been compiled, and a Tofino compiler is at "
                        f"{compiler}: run `make p4-tna` and commit p4src/tna/build/")
        pytest.skip("p4src/tna/ has not been compiled: bf-p4c (p4c's Tofino backend) is not "
                    "installed here (set MP_BF_P4C, then `make p4-tna`)")
    assert recorded == p4build.tna_source_hash(), (
        "p4src/tna/ or the p4src/include/ files it shares changed since p4src/tna/build/ "
        "was compiled: run `make p4-tna` and commit the outputs")
    for program in p4build.TNA_PROGRAMS:
        for path in p4build.tna_output_paths(program)[:2]:
            assert (p4build.REPO / path).exists(), f"{path} missing: run `make p4-tna`"
        summary = json.loads((p4build.REPO / p4build.tna_output_paths(program)[1]).read_text())
        assert summary.get("compiler") and summary.get("stages_used"), summary


def test_tna_program_passes_the_p4c_front_and_mid_end() -> None:
    p4test = toolchain.find("p4test")
    include_dir = p4build.find_tna_include()
    if p4test is None or include_dir is None:
        pytest.skip("p4test or the Tofino include files (tna.p4) are not installed "
                    "(set MP_P4TEST and MP_TNA_P4INCLUDE)")
    result = p4build.frontend_check(p4test, include_dir)
    assert result.returncode == 0, result.stderr


def test_v1model_hash_ignores_the_tna_folder_and_tna_hash_follows_shared_includes(
        tmp_path: Path) -> None:
    shutil.copytree(p4build.REPO / "p4src", tmp_path / "p4src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    v1model, tna = p4build.source_hash(tmp_path), p4build.tna_source_hash(tmp_path)
    assert v1model == p4build.source_hash() and tna == p4build.tna_source_hash()

    sched = tmp_path / p4build.TNA_DIR / "include" / "tna_scheduling.p4"
    sched.write_text(sched.read_text() + "\n// changed\n")
    assert p4build.source_hash(tmp_path) == v1model
    assert p4build.tna_source_hash(tmp_path) != tna

    tna = p4build.tna_source_hash(tmp_path)
    v1_only = tmp_path / "p4src" / "include" / "controls.p4"  # not included by the TNA program
    v1_only.write_text(v1_only.read_text() + "\n// changed\n")
    assert p4build.tna_source_hash(tmp_path) == tna
    assert p4build.source_hash(tmp_path) != v1model

    shared = tmp_path / "p4src" / "include" / "defines.p4"
    shared.write_text(shared.read_text() + "\n// changed\n")
    assert p4build.tna_source_hash(tmp_path) != tna


def test_tna_program_includes_the_shared_wire_headers_and_constants() -> None:
    closure = {str(p) for p in p4build.include_closure(p4build.TNA_DIR / "masque_pifo_tna.p4")}
    assert {"p4src/include/defines.p4", "p4src/include/headers.p4"} <= closure
    assert "p4src/include/controls.p4" not in closure  # v1model-only stages are not shared


def _const(name: str) -> int:
    match = re.search(rf"const\s+\S+\s+{name}\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*;",
                      TNA_SOURCES["tna_defines.p4"])
    assert match, f"{name} not found in tna_defines.p4"
    return int(match.group(1), 0)


def test_tna_constants_agree() -> None:
    for name in ("BRIDGED_PACKET", "BRIDGED_WORKER", "ETHERTYPE_DEPTH_REPORT",
                 "WORKER_OUTBOUND", "WORKER_RETURNING", "RESUBMIT_PUSH_DOWN"):
        assert _const(name) == getattr(tofino, name), name
    assert _const("CELLS_MAX") == tofino.CELLS_MAX
    assert _const("TNA_RANK_WINDOW") == tofino.TNA_RANK_WINDOW


def test_windows_and_bounds_are_unrolled_to_the_shared_sizes() -> None:
    sched = TNA_SOURCES["tna_scheduling.p4"]
    slots = re.findall(r"^\s*RANK_SLOT\((\d+)\)\s*$", sched, re.MULTILINE)
    assert [int(s) for s in slots] == list(range(tofino.TNA_RANK_WINDOW))
    assert len(re.findall(r"rank_slot_\d+\.execute", sched)) == tofino.TNA_RANK_WINDOW
    bounds = re.findall(r"^\s*SPPIFO_BOUND\((\d+)\)\s*$", sched, re.MULTILINE)
    assert [int(b) for b in bounds] == list(range(pipeline.NUM_QUEUES - 1))  # + the top queue
    for macro in ("INGRESS_DEPTH", "EGRESS_DEPTH"):
        found = re.findall(rf"^\s*{macro}\((\d+)(?:,\s*\d+)?\)\s*$", TNA_TEXT, re.MULTILINE)
        assert [int(q) for q in found] == list(range(pipeline.NUM_QUEUES)), macro


def test_quic_parse_threshold_is_the_shared_minimum() -> None:
    """The parser's masked select on udp.length must accept exactly the lengths below
    QUIC_SHORT_MIN_UDP_LEN (Tofino's parser matches values under masks, not `>=`)."""
    state = re.search(r"state parse_udp \{.*?transition select\(hdr\.udp\.length\) \{(.*?)\}",
                      TNA_SOURCES["tna_parser.p4"], re.DOTALL)
    assert state
    patterns = []
    for value, mask in re.findall(r"(\w+)(?:\s*&&&\s*(\w+))?\s*:\s*accept", state.group(1)):
        patterns.append((int(value, 0), int(mask, 0) if mask else 0xFFFF))
    too_short = {length for length in range(1 << 16)
                 if any(length & mask == value & mask for value, mask in patterns)}
    assert too_short == set(range(pipeline.QUIC_SHORT_MIN_UDP_LEN))


def _tables(text: str) -> dict[str, tuple[list[tuple[str, str]], int | None]]:
    """table name -> ([(match kind, @name) of each key], size) of a P4 source."""
    found = {}
    for match in re.finditer(r"^([ \t]*)table\s+(\w+)\s*\{(.*?)\n\1\}", text,
                             re.DOTALL | re.MULTILINE):
        _, name, body = match.groups()
        keys = re.findall(r":\s*(\w+)\s*@name\(\"(\w+)\"\)", body)
        size = re.search(r"size\s*=\s*(\d+)\s*;", body)
        found[name] = (keys, int(size.group(1)) if size else None)
    return found


def test_shared_tables_mirror_the_v1model_program() -> None:
    """What the controller writes: the forwarded-mode, ranking and routing tables keep the
    v1model program's names, keys (match kinds and names) and sizes."""
    v1model, tna = _tables(V1MODEL_TEXT), _tables(TNA_TEXT)
    for name in ("flow_rank", "quic_forward", "quic_dcids", "ipv4_lpm", "rank_to_queue"):
        assert name in tna, name
        assert tna[name][0] == v1model[name][0], name  # keys: names and match kinds
        # sizes: the v1model program's, or the smaller one docs/tofino.md gives a reason for
        assert tna[name][1] == tofino.TNA_TABLE_SIZES.get(name, v1model[name][1]), name
    assert set(tofino.TNA_TABLE_SIZES) <= {"flow_rank", "quic_forward", "quic_dcids"}
    assert set(tna) - set(v1model) == {"depth_worker", "admission_thresholds", "depth_used",
                                       "count_below", "choose_queue"}
    assert not {"fastpath_local", "fastpath_decap", "fastpath_encap"} & set(tna)


def test_summarise_resources_reads_metrics_and_resources(tmp_path: Path) -> None:
    logs = tmp_path / "pipe" / "logs"
    logs.mkdir(parents=True)
    (logs / "metrics.json").write_text(json.dumps({
        "target": "tofino",
        "mau": {"srams": 120, "tcams": 30, "map_rams": 40, "logical_tables": 55,
                "latency": [{"gress": "ingress", "cycles": 200}]},
        "phv": {"normal": [{"bit_width": 8, "containers_occupied": 20},
                           {"bit_width": 32, "containers_occupied": 10}]}}))
    (tmp_path / "pipe" / "resources.json").write_text(json.dumps({"resources": {"mau": {
        "nStages": 12,
        "mau_stages": [
            {"stage_number": 0,
             "rams": {"srams": [{"usages": [{"used_by": "quic_forward"}]},
                                {"usages": [{"used_by": "quic_forward"}]}]},
             "tcams": {"tcams": [{"usages": [{"used_by": "flow_rank"}]}]},
             "logical_tables": {"tables": [{}, {}]}},
            {"stage_number": 1,
             "rams": {"srams": [{"usages": [{"used_by": "quic_forward"},
                                            {"used_by": "quic_forward"}]}]},
             "tcams": {"tcams": []}, "logical_tables": {"tables": [{}]}},
            {"stage_number": 2, "rams": {"srams": []}, "tcams": {"tcams": []},
             "logical_tables": {"tables": []}}]}}}))
    summary = p4build.summarise_resources(tmp_path, "bf-p4c 9.9.9")
    assert summary["compiler"] == "bf-p4c 9.9.9" and summary["target"] == "tofino"
    assert summary["totals"] == {"srams": 120, "tcams": 30, "map_rams": 40,
                                 "logical_tables": 55}
    assert summary["phv_containers"] == {"8": 20, "32": 10}
    assert summary["stages_available"] == 12 and summary["stages_used"] == 2
    assert summary["per_table"]["quic_forward"] == {"stages": [0, 1], "srams": 3, "tcams": 0}
    assert summary["per_table"]["flow_rank"] == {"stages": [0], "srams": 0, "tcams": 1}


def test_p4build_tna_without_bf_p4c_is_a_one_line_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def missing(name: str) -> Path:
        raise toolchain.ToolMissing(f"{name} not found")

    monkeypatch.setattr(toolchain, "require", missing)
    monkeypatch.setattr(p4build, "find_tofino_compiler", lambda: None)
    assert p4build.main(["--tna"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("make p4-tna: bf-p4c not found")
    assert p4build.main(["--tna-frontend"]) == 1
    assert capsys.readouterr().err.strip() == "p4build --tna-frontend: p4test not found"
