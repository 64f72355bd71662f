"""`make proto`: generate the northbound API's Python modules from controller/proto/*.proto.

The generated modules are committed (like the p4c outputs), so running the
controller needs no code generator; a test regenerates them into a temporary
folder and fails when they differ from the committed ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from clikit import no_options

REPO = Path(__file__).resolve().parent.parent
PROTOS = ("controller/proto/northbound.proto",)


def generate(out: Path = REPO) -> list[Path]:
    """Run protoc (grpcio-tools) on PROTOS, writing under `out`; the files written."""
    from grpc_tools import protoc  # a test/dev dependency, not needed at run time

    written = []
    for proto in PROTOS:
        args = ["protoc", f"-I{REPO}", f"--python_out={out}", f"--pyi_out={out}",
                f"--grpc_python_out={out}", str(REPO / proto)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        stem = proto.removesuffix(".proto")
        # the .pyi stub lets mypy check the callers of the messages
        written += [out / f"{stem}_pb2.py", out / f"{stem}_pb2.pyi", out / f"{stem}_pb2_grpc.py"]
    return written


def main(argv: list[str] | None = None) -> int:
    no_options("make proto", __doc__, argv)
    try:
        files = generate()
    except ImportError:
        print("make proto: grpcio-tools is missing (pip install -e '.[test]')", file=sys.stderr)
        return 1
    print("make proto: wrote " + ", ".join(str(f.relative_to(REPO)) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
