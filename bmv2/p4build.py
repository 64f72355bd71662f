"""`make p4`: compile the P4 programs in p4src/ with p4c into p4src/build/;
`make p4-tna`: compile the Tofino program p4src/tna/ with p4c's Tofino backend
(bf-p4c) into p4src/tna/build/; `python -m bmv2.p4build --tna-frontend`: type-check the
Tofino program with p4c's front and mid end (p4test) where bf-p4c is not installed.

The outputs (BMv2 JSON, P4Info text; for Tofino the P4Info and a resource summary) are
committed, with the hash of the sources they came from and the compiler's version line,
so that a machine without the compiler has the same program and a test notices stale
outputs. The compilers run from the repository root with relative paths, so the source
paths they record do not depend on where the clone lives.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bmv2 import toolchain

REPO = Path(__file__).resolve().parent.parent
P4SRC = Path("p4src")
BUILD = P4SRC / "build"
#: Top-level programs (each file has a `V1Switch(...) main`); includes are the other .p4 files.
PROGRAMS = ("masque_pifo",)
HASH_FILE = BUILD / "SOURCE_HASH"

#: The Tofino (TNA) program: its own folder, which shares p4src/include/ (see p4src/tofino.py).
TNA_DIR = P4SRC / "tna"
TNA_BUILD = TNA_DIR / "build"
TNA_PROGRAMS = ("masque_pifo_tna",)
TNA_HASH_FILE = TNA_BUILD / "SOURCE_HASH"
#: Where the Tofino include files (tna.p4 and what it includes) may be, besides $MP_TNA_P4INCLUDE:
#: an installed p4c's share/ or a p4c source tree's Tofino backend.
TNA_INCLUDE_GLOBS = ("/opt/*/share/p4c/p4include", "/usr/local/share/p4c/p4include",
                     "/opt/src/*/backends/tofino/bf-p4c/p4include")

#: Where a p4c driver built with the Tofino backend may be when no `bf-p4c` is on the path:
#: next to the Tofino backend's p4c-barefoot, installed or in a build tree.
TOFINO_DRIVER_GLOBS = ("/opt/*/bin/p4c", "/opt/src/*/build/p4c")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def source_hash(root: Path = REPO) -> str:
    """SHA-256 over every P4 source of the v1model program: p4src/**.p4 (paths and
    contents) without build/ and without the Tofino program's own folder."""
    digest = hashlib.sha256()
    for path in sorted((root / P4SRC).rglob("*.p4")):
        rel = path.relative_to(root)
        if rel.parts[:2] == BUILD.parts or rel.parts[:2] == TNA_DIR.parts:
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def include_closure(top: Path, root: Path = REPO) -> list[Path]:
    """`top` and every file it includes with #include "..." (relative to the including
    file), recursively; paths relative to `root`, sorted. System includes (<tna.p4>) are
    the compiler's and not followed."""
    seen: set[Path] = set()
    todo = [(root / top).resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        if not path.exists():
            raise FileNotFoundError(f"{path.relative_to(root.resolve())} does not exist")
        seen.add(path)
        for name in _INCLUDE.findall(path.read_text()):
            todo.append((path.parent / name).resolve())
    return sorted(p.relative_to(root.resolve()) for p in seen)


def tna_source_hash(root: Path = REPO) -> str:
    """SHA-256 over the sources the Tofino programs are compiled from: each top-level
    program and what it includes, the shared p4src/include/ files among them."""
    files: set[Path] = set()
    for program in TNA_PROGRAMS:
        files.update(include_closure(TNA_DIR / f"{program}.p4", root))
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(str(rel).encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def recorded_hash(root: Path = REPO, hash_file: Path = HASH_FILE) -> str | None:
    """The source hash written beside the committed outputs, or None if there is none."""
    path = root / hash_file
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("sha256 "):
            return line.split()[1]
    return None


def output_paths(program: str) -> tuple[Path, Path]:
    """(BMv2 JSON, P4Info text) of a program, relative to the repository root."""
    return BUILD / f"{program}.json", BUILD / f"{program}.p4info.txtpb"


def compile_all(p4c: Path) -> str:
    """Run p4c on every program; returns the p4c version line."""
    version = subprocess.run([str(p4c), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[0]
    (REPO / BUILD).mkdir(parents=True, exist_ok=True)
    for program in PROGRAMS:
        src = P4SRC / f"{program}.p4"
        if not (REPO / src).exists():
            raise FileNotFoundError(f"{src} does not exist")
        _, p4info = output_paths(program)
        cmd = [str(p4c), "--target", "bmv2", "--arch", "v1model", "--std", "p4-16",
               "-o", str(BUILD), "--p4runtime-files", str(p4info), str(src)]
        print("+ " + " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, cwd=REPO, check=True)
        # p4c also leaves the preprocessed source, which names this machine's include paths
        (REPO / BUILD / f"{program}.p4i").unlink(missing_ok=True)
    (REPO / HASH_FILE).write_text(
        f"sha256 {source_hash()}\np4c-version {version}\n"
        "# written by `make p4` (python -m bmv2.p4build); do not edit\n"
    )
    return version


def tna_output_paths(program: str) -> tuple[Path, Path, Path]:
    """(P4Info text, resource summary JSON, bf-p4c's table summary) of a Tofino program,
    relative to the repository root."""
    return (TNA_BUILD / f"{program}.p4info.txtpb", TNA_BUILD / f"{program}.resources.json",
            TNA_BUILD / f"{program}.table_summary.log")


def _count_usages(units: list[dict[str, Any]], per_table: dict[str, dict[str, Any]],
                  kind: str, stage: int) -> int:
    """Count used memory units (SRAMs or TCAMs) of one stage, and credit each table."""
    for unit in units:
        for user in {u.get("used_by") for u in unit.get("usages", []) if u.get("used_by")}:
            entry = per_table.setdefault(user, {"stages": set(), "srams": 0, "tcams": 0})
            entry[kind] += 1
            entry["stages"].add(stage)
    return len(units)


def summarise_resources(out_dir: Path, compiler_version: str) -> dict[str, Any]:
    """A small, diffable summary of what bf-p4c allocated, from its output folder: MAU
    stages used, SRAMs, TCAMs and map RAMs (metrics.json), PHV containers by width, and per
    stage and per table the SRAMs and TCAMs and the stages a table occupies
    (resources.json). Anything bf-p4c did not write is left out."""
    summary: dict[str, Any] = {"compiler": compiler_version}
    metrics_files = sorted(out_dir.rglob("metrics.json"))
    if metrics_files:
        metrics = json.loads(metrics_files[0].read_text())
        summary["target"] = metrics.get("target")
        mau = metrics.get("mau", {})
        summary["totals"] = {k: mau[k] for k in ("srams", "tcams", "map_rams",
                                                 "logical_tables") if k in mau}
        summary["latency_cycles"] = {item.get("gress"): item.get("cycles")
                                     for item in mau.get("latency", [])}
        summary["phv_containers"] = {
            str(item.get("bit_width")): item.get("containers_occupied")
            for item in metrics.get("phv", {}).get("normal", [])}
    resources_files = sorted(out_dir.rglob("resources.json"))
    if resources_files:
        resources = json.loads(resources_files[0].read_text()).get("resources", {})
        mau = resources.get("mau", {})
        per_table: dict[str, dict[str, Any]] = {}
        stages = []
        for stage in mau.get("mau_stages", []):
            number = stage.get("stage_number")
            srams = _count_usages(stage.get("rams", {}).get("srams", []), per_table,
                                  "srams", number)
            tcams = _count_usages(stage.get("tcams", {}).get("tcams", []), per_table,
                                  "tcams", number)
            tables = stage.get("logical_tables", {}).get("tables", [])
            stages.append({"stage": number, "srams": srams, "tcams": tcams,
                           "logical_tables": len(tables)})
        summary["stages_available"] = mau.get("nStages")
        used = [s for s in stages if s["srams"] or s["tcams"] or s["logical_tables"]]
        summary["stages_used"] = len(used)
        summary["per_stage"] = stages
        summary["per_table"] = {
            name: {"stages": sorted(v["stages"]), "srams": v["srams"], "tcams": v["tcams"]}
            for name, v in sorted(per_table.items())}
    return summary


def compiler_version(compiler: Path) -> str:
    """The version line of `compiler --version` (p4c's drivers print it on stdout; p4test
    prints its path and `Version ...` on stderr), named after the program."""
    done = subprocess.run([str(compiler), "--version"], capture_output=True, text=True,
                          check=True)
    lines = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines()]
    for line in lines:
        if line.startswith("Version "):
            return f"{compiler.name} {line}"
        if re.match(r"[\w-]+ \d+\.\d+", line):
            return line
    raise RuntimeError(f"{compiler} --version printed no version")


def _assemble_and_log(compiler: Path, out: Path, program: str) -> None:
    """The driver's last two steps, run by hand beside it: bfas assembles the compiled
    program into tofino.bin (so an encoding the hardware cannot hold still fails the
    build), and p4c-build-logs writes metrics.json (stages, SRAM, TCAM, PHV, latency).
    p4c-build-logs exits non-zero for a phv.json bug of its own even when metrics.json is
    written; only a missing metrics.json is an error."""
    pipe_dirs = sorted(p.parent for p in out.rglob(f"{program}.bfa"))
    if not pipe_dirs:
        raise RuntimeError(f"bf-p4c wrote no {program}.bfa under {out}")
    bin_dir = compiler.parent
    for pipe in pipe_dirs:
        subprocess.run([str(bin_dir / "bfas"), "-o", str(pipe), f"{program}.bfa"],
                       cwd=pipe, check=True, stdout=subprocess.DEVNULL)
        logs = pipe / "logs"
        cmd = [str(bin_dir / "p4c-build-logs"), "-r", str(logs / "resources.json"),
               "--output", str(logs), str(pipe / "context.json")]
        if (logs / "power.json").exists():
            cmd[1:1] = ["-p", str(logs / "power.json")]
        subprocess.run(cmd, cwd=pipe, check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if not (logs / "metrics.json").exists():
            raise RuntimeError(f"p4c-build-logs wrote no metrics.json in {logs}")


def compile_tna(compiler: Path) -> str:
    """Run bf-p4c on every Tofino program; commit-ready outputs go to p4src/tna/build/
    (P4Info, resource summary, table summary, SOURCE_HASH). Returns the version line."""
    version = compiler_version(compiler)
    (REPO / TNA_BUILD).mkdir(parents=True, exist_ok=True)
    for program in TNA_PROGRAMS:
        src = TNA_DIR / f"{program}.p4"
        if not (REPO / src).exists():
            raise FileNotFoundError(f"{src} does not exist")
        p4info, summary_path, table_summary = tna_output_paths(program)
        with tempfile.TemporaryDirectory(prefix="mp-tna-") as out:
            # -S stops the driver before its assembler step, which p4c 1.2.5.16's driver
            # cannot start (it calls str.find on a pathlib.Path); -g keeps the logs.
            cmd = [str(compiler), "--std", "p4-16", "--target", "tofino", "--arch", "tna",
                   "-S", "-g", "-o", out, "--p4runtime-files", str(p4info), str(src)]
            print("+ " + " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, cwd=REPO, check=True)
            _assemble_and_log(compiler, Path(out), program)
            summary = summarise_resources(Path(out), version)
            (REPO / summary_path).write_text(json.dumps(summary, indent=1) + "\n")
            logs = sorted(Path(out).rglob("table_summary.log"))
            if logs:
                shutil.copyfile(logs[0], REPO / table_summary)
    (REPO / TNA_HASH_FILE).write_text(
        f"sha256 {tna_source_hash()}\ncompiler-version {version}\n"
        "# written by `make p4-tna` (python -m bmv2.p4build --tna); do not edit\n"
    )
    return version


def find_tofino_compiler() -> Path | None:
    """p4c's Tofino driver: `bf-p4c` ($MP_BF_P4C, PATH, /opt/*/bin), else a p4c driver
    built with the Tofino backend (whose default target it makes tofino), or None."""
    found = toolchain.find("bf-p4c")
    if found is not None:
        return found
    for pattern in TOFINO_DRIVER_GLOBS:
        for candidate in sorted(glob.glob(pattern)):
            backend = Path(candidate).parent / "p4c-barefoot"  # the driver alone is not enough
            if os.access(candidate, os.X_OK) and os.access(backend, os.X_OK):
                return Path(candidate)
    return None


def find_tna_include() -> Path | None:
    """A folder holding tna.p4 ($MP_TNA_P4INCLUDE first), or None."""
    candidates = [os.environ.get("MP_TNA_P4INCLUDE", "")]
    for pattern in TNA_INCLUDE_GLOBS:
        candidates.extend(sorted(glob.glob(pattern)))
    for candidate in candidates:
        if candidate and (Path(candidate) / "tna.p4").is_file():
            return Path(candidate)
    return None


def frontend_check(p4test: Path, include_dir: Path,
                   program: str = TNA_PROGRAMS[0]) -> subprocess.CompletedProcess[str]:
    """Type-check a Tofino program with p4c's front and mid end (p4test), against the
    Tofino include files in `include_dir`, as Tofino 1 (__TARGET_TOFINO__=1). Checks
    syntax, types, extern signatures and the RegisterAction bodies' types; not Tofino's
    resource or placement rules, which only bf-p4c knows."""
    cmd = [str(p4test), "--std", "p4-16", "-I", str(include_dir), "-D__TARGET_TOFINO__=1",
           str(TNA_DIR / f"{program}.p4")]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)


def _compile_and_report(prog: str, tool: str, compile_fn: Callable[[Path], str],
                        compiler: Path, out_dir: Path) -> int:
    """`compile_fn(compiler)` with its outcome as one line: what it wrote, or why not."""
    try:
        version = compile_fn(compiler)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{prog}: {tool} failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    print(f"{prog}: wrote {out_dir}/ with {version}")
    return 0


def _main_v1model() -> int:
    try:
        p4c = toolchain.require("p4c")
    except toolchain.ToolMissing as exc:
        print(f"make p4: {exc}", file=sys.stderr)
        return 1
    return _compile_and_report("make p4", "p4c", compile_all, p4c, BUILD)


def _main_tna() -> int:
    compiler = find_tofino_compiler()
    if compiler is None:
        print("make p4-tna: bf-p4c not found (searched $MP_BF_P4C, PATH, /opt/*/bin, "
              f"{', '.join(TOFINO_DRIVER_GLOBS)}): build p4c with its Tofino backend "
              "(ENABLE_TOFINO) under /opt or set MP_BF_P4C to its driver", file=sys.stderr)
        return 1
    return _compile_and_report("make p4-tna", "bf-p4c", compile_tna, compiler, TNA_BUILD)


def _main_tna_frontend() -> int:
    try:
        p4test = toolchain.require("p4test")
    except toolchain.ToolMissing as exc:
        print(f"p4build --tna-frontend: {exc}", file=sys.stderr)
        return 1
    include_dir = find_tna_include()
    if include_dir is None:
        print("p4build --tna-frontend: tna.p4 not found (set MP_TNA_P4INCLUDE to the "
              "folder of p4c's Tofino include files)", file=sys.stderr)
        return 1
    result = frontend_check(p4test, include_dir)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        print(f"p4build --tna-frontend: p4test failed with exit code {result.returncode}",
              file=sys.stderr)
        return 1
    print(f"p4build --tna-frontend: {TNA_DIR}/ passes the front and mid end of "
          f"{compiler_version(p4test)}, with the Tofino include files in {include_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmv2.p4build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--tna", action="store_true",
                       help="compile the Tofino program with bf-p4c (`make p4-tna`)")
    which.add_argument("--tna-frontend", action="store_true",
                       help="type-check the Tofino program with p4test")
    args = parser.parse_args(argv)
    if args.tna:
        return _main_tna()
    if args.tna_frontend:
        return _main_tna_frontend()
    return _main_v1model()


if __name__ == "__main__":
    sys.exit(main())
