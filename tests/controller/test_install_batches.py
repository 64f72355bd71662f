"""InstallQuicMappings: many mappings in one northbound call, each installed or refused
on its own (no switch: the service records what it would write)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from controller.northbound import MAX_MAPPINGS_PER_CALL
from controller.proto import northbound_pb2 as nb
from tests.controller.session_proxy import MAPPING
from tests.controller.test_sessions import service, serving

pytestmark = pytest.mark.timeout(60)
PROXY = (("authorization", "Bearer t-proxy"),)


def mapping(src_port: int, **changes: object) -> nb.QuicMapping:
    m = nb.QuicMapping()
    m.CopyFrom(MAPPING)
    m.src_port = src_port
    for name, value in changes.items():
        setattr(m, name, value)
    return m


def test_each_mapping_of_a_call_is_installed_or_refused_on_its_own() -> None:
    async def main() -> None:
        svc = service()
        async with serving(svc) as stub:
            reply = await stub.InstallQuicMappings(nb.QuicMappingList(mappings=[
                mapping(5000), mapping(5001, new_dcid=b"\x02" * 4), mapping(5002),
                mapping(5003, direction="sideways")]), metadata=PROXY)
            assert [(r.error_code, r.mapping.src_port, r.mapping.client)
                    for r in reply.results] == [
                ("", 5000, "proxy"), ("FAILED_PRECONDITION", 0, ""), ("", 5002, "proxy"),
                ("INVALID_ARGUMENT", 0, "")]
            assert "8-byte connection IDs only" in reply.results[1].error
            assert sorted(m.src_port for m in svc.store.quic_mappings()) == [5000, 5002]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.InstallQuicMappings(nb.QuicMappingList(mappings=[
                    mapping(6000 + i) for i in range(MAX_MAPPINGS_PER_CALL + 1)]),
                    metadata=PROXY)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(svc.store.quic_mappings()) == 2  # nothing of the refused call
            reply = await stub.InstallQuicMappings(nb.QuicMappingList(mappings=[
                mapping(7000)]), metadata=(("authorization", "Bearer t-alice"),))
            assert [(r.error_code, r.error) for r in reply.results] == [
                ("PERMISSION_DENIED", "alice is not a proxy: only proxies install QUIC "
                 "mappings")]

    asyncio.run(main())


def test_a_switch_refusing_the_write_is_a_clear_error() -> None:
    from controller.write_batcher import SwitchWriteError

    async def main() -> None:
        svc = service()

        async def refuse(updates: list[object]) -> None:
            raise SwitchWriteError({0: "ALREADY_EXISTS: entry exists"})

        svc._push = refuse  # type: ignore[method-assign]
        async with serving(svc) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.InstallQuicMapping(mapping(5000), metadata=PROXY)
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert err.value.details() == ("stored, but the switch refused the write: "
                                           "update 0: ALREADY_EXISTS: entry exists")
            reply = await stub.InstallQuicMappings(
                nb.QuicMappingList(mappings=[mapping(5001)]), metadata=PROXY)
            assert [(r.error_code, r.error) for r in reply.results] == [
                ("INTERNAL", "update 0: ALREADY_EXISTS: entry exists")]

    asyncio.run(main())
