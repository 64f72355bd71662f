"""A p4runtime-shell session against a switch, run by p4runtime-shell's own interpreter
(it pins an old protobuf, so it lives in a separate venv: `make p4runtime-shell`).

    python shell_session.py ADDRESS DEVICE_ID ELECTION_ID P4INFO BMV2_JSON

Prints one JSON object: what each step saw (a status name, or the values read).
Imports nothing from the project: the other interpreter does not have it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
import p4runtime_sh.shell as sh
from google.rpc import code_pb2, status_pb2
from p4.v1 import p4runtime_pb2
from p4runtime_sh.p4runtime import P4RuntimeException, P4RuntimeWriteException

FLOW_IDS = "MpIngress.fast_path.fastpath_flow_ids"
RANKS = "MpIngress.ranking.flow_rank"


def code_of(exc: Exception) -> str:
    if isinstance(exc, P4RuntimeWriteException):
        return ",".join(code_pb2.Code.Name(e.canonical_code)
                        for _, e in exc.errors) or "UNKNOWN"
    if isinstance(exc, P4RuntimeException):
        return _details(exc.grpc_error) or exc.grpc_error.code().name
    if isinstance(exc, grpc.RpcError):
        return exc.code().name  # type: ignore[attr-defined]
    return f"client refused: {type(exc).__name__}"


def _details(error: grpc.RpcError) -> str:
    """The p4.Error codes of a batch's failures (Read reports them as Write does, §13.3)."""
    codes = []
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                p4_error = p4runtime_pb2.Error()
                detail.Unpack(p4_error)
                if p4_error.canonical_code != code_pb2.OK:
                    codes.append(code_pb2.Code.Name(p4_error.canonical_code))
    return ",".join(codes)


def attempt(step: object) -> str:
    try:
        step()  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - the outcome is the point
        return code_of(exc)
    return "OK"


def flow(flow_id: int, action: str = "MpIngress.fast_path.flow_known") -> Any:
    te = sh.TableEntry(FLOW_IDS)(action=action)
    te.match["flow_id"] = str(flow_id)
    return te


def main() -> None:
    address, device, election, p4info, blob = sys.argv[1:6]
    sh.setup(device_id=int(device), grpc_addr=address, election_id=(0, int(election)),
             config=sh.FwdPipeConfig(p4info, blob), verbose=False)
    seen: dict[str, object] = {}
    try:
        seen["insert"] = attempt(flow(7).insert)
        seen["insert_again"] = attempt(flow(7).insert)
        seen["read"] = sorted(str(e.match["flow_id"].exact.value.hex())
                              for e in sh.TableEntry(FLOW_IDS).read())
        seen["defaultonly_entry"] = attempt(flow(8, "NoAction").insert)
        seen["delete_missing"] = attempt(flow(9).delete)
        for priority in (10, 11):
            te = sh.TableEntry(RANKS)(action="MpIngress.ranking.set_rank")
            te.match["src_addr"] = f"10.0.0.{priority}&&&255.255.255.255"
            te.action["rank"] = str(priority)
            te.priority = priority
            seen[f"rank_{priority}"] = attempt(te.insert)
        query = sh.TableEntry(RANKS)
        query.priority = 11
        seen["read_priority_11"] = sorted(e.priority for e in query.read())
        counter = sh.CounterEntry("MpIngress.scheduling.queue_enqueues")
        seen["counter_cells"] = len(list(counter.read()))
        past_end = sh.CounterEntry("MpIngress.scheduling.queue_enqueues")
        past_end.index = 8
        seen["counter_past_end"] = attempt(lambda: list(past_end.read()))
    finally:
        sh.teardown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
