"""Malformed P4Runtime requests get the spec's status codes, per update in a batch,
and the target keeps running."""

from __future__ import annotations

import finsy as fy
import pytest
from finsy.grpcutil import GRPCStatusCode
from finsy.p4client import P4ClientError
from finsy.proto import p4r

pytestmark = pytest.mark.root


def write_raw(p4rt, *updates: p4r.Update) -> P4ClientError | None:  # type: ignore[no-untyped-def]
    try:
        p4rt._call(p4rt.session.write_raw(list(updates)))
    except P4ClientError as exc:
        return exc
    return None


def entry(p4rt, e: fy.P4TableEntry) -> p4r.TableEntry:  # type: ignore[no-untyped-def]
    return e.encode(p4rt.session.schema).table_entry


def update(kind: int, te: p4r.TableEntry) -> p4r.Update:
    return p4r.Update(type=kind, entity=p4r.Entity(table_entry=te))


def codes(exc: P4ClientError) -> dict[int, GRPCStatusCode]:
    """Update index -> status, for the updates that failed."""
    return {i: e.canonical_code for i, e in exc.details.items()}


def test_batch_reports_each_update(p4rt) -> None:  # type: ignore[no-untyped-def]
    good = entry(p4rt, fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=7),
                                       action=fy.Action("flow_known")))
    missing = entry(p4rt, fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=8),
                                          action=fy.Action("flow_known")))
    exc = write_raw(p4rt, update(p4r.Update.INSERT, good), update(p4r.Update.INSERT, good),
                    update(p4r.Update.DELETE, missing))
    assert exc is not None
    assert codes(exc) == {1: GRPCStatusCode.ALREADY_EXISTS, 2: GRPCStatusCode.NOT_FOUND}
    [kept] = p4rt.read([fy.P4TableEntry("fastpath_flow_ids")])
    assert kept["flow_id"] == 7, "the good update of a failed batch is applied"


def test_unknown_ids_and_bad_values_are_refused(p4rt) -> None:  # type: ignore[no-untyped-def]
    good = entry(p4rt, fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=7),
                                       action=fy.Action("flow_known")))
    unknown_table = p4r.TableEntry()
    unknown_table.CopyFrom(good)
    unknown_table.table_id = 0x0BADBEEF
    too_wide = p4r.TableEntry()
    too_wide.CopyFrom(good)
    too_wide.match[0].exact.value = bytes([1]) * 5  # 40 bits into a 32-bit key
    for bad in (unknown_table, too_wide):
        exc = write_raw(p4rt, update(p4r.Update.INSERT, bad))
        assert exc is not None
        assert codes(exc)[0] in (GRPCStatusCode.NOT_FOUND, GRPCStatusCode.INVALID_ARGUMENT,
                                 GRPCStatusCode.OUT_OF_RANGE)
    # still serving
    p4rt.write([+fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=9),
                                 action=fy.Action("flow_known"))])
    assert len(p4rt.read([fy.P4TableEntry("fastpath_flow_ids")])) == 1
