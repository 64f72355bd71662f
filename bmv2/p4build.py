"""`make p4`: compile the P4 programs in p4src/ with p4c into p4src/build/.

The outputs (BMv2 JSON, P4Info text) are committed, with the hash of the
sources they came from and the `p4c --version` line that made them, so that a
machine without p4c runs the same program and a test notices stale outputs.
p4c runs from the repository root with relative paths, so the source paths it
records in the JSON do not depend on where the clone lives.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bmv2 import toolchain
from clikit import no_options

REPO = Path(__file__).resolve().parent.parent
P4SRC = Path("p4src")
BUILD = P4SRC / "build"
#: Top-level programs (each file has a `V1Switch(...) main`); includes are the other .p4 files.
PROGRAMS = ("masque_pifo",)
HASH_FILE = BUILD / "SOURCE_HASH"


def source_hash(root: Path = REPO) -> str:
    """SHA-256 over every P4 source under p4src/ (paths and contents, build/ excluded)."""
    digest = hashlib.sha256()
    for path in sorted((root / P4SRC).rglob("*.p4")):
        rel = path.relative_to(root)
        if rel.parts[:2] == BUILD.parts:
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def recorded_hash(root: Path = REPO) -> str | None:
    """The source hash written beside the committed outputs, or None if there is none."""
    path = root / HASH_FILE
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


def main(argv: list[str] | None = None) -> int:
    no_options("make p4", __doc__, argv)
    try:
        p4c = toolchain.require("p4c")
    except toolchain.ToolMissing as exc:
        print(f"make p4: {exc}", file=sys.stderr)
        return 1
    try:
        version = compile_all(p4c)
    except FileNotFoundError as exc:
        print(f"make p4: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"make p4: p4c failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    print(f"make p4: wrote {BUILD}/ with {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
