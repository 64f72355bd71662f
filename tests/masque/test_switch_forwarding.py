"""The switch-backed forwarding table: which rules it hands to the controller, in what
form, and what it declines (those stay on the proxy host's software forwarder)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from hostagent.masque.forwarding import TO_CLIENT, TO_TARGET, ForwardingRule, FourTuple
from hostagent.masque.switch_forwarding import ControllerForwardingTable, switch_can_apply


class FakeNorthbound:
    """Records the controller calls (`batches`: the size of each InstallQuicMappings
    call); refuses the mappings whose tunnel says so; `batched=False` is a controller
    without InstallQuicMappings."""

    def __init__(self, batched: bool = True, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.batches: list[int] = []
        self.batched, self.delay = batched, delay

    def stub(self) -> Any:
        outer = self

        class Stub:
            async def InstallQuicMapping(self, msg: Any, **_kw: Any) -> Any:  # noqa: N802
                outer.calls.append(("install", msg))
                if msg.tunnel == "refused":
                    raise RuntimeError("RESOURCE_EXHAUSTED")
                return msg

            async def InstallQuicMappings(self, msg: Any, **_kw: Any) -> Any:  # noqa: N802
                if not outer.batched:
                    raise grpc.aio.AioRpcError(grpc.StatusCode.UNIMPLEMENTED,
                                               grpc.aio.Metadata(), grpc.aio.Metadata(),
                                               "Method not found!")
                outer.batches.append(len(msg.mappings))
                await asyncio.sleep(outer.delay)
                results = []
                for m in msg.mappings:
                    outer.calls.append(("install", m))
                    refused = m.tunnel == "refused"
                    results.append(SimpleNamespace(
                        mapping=m, error_code="RESOURCE_EXHAUSTED" if refused else "",
                        error="too many mappings" if refused else ""))
                return SimpleNamespace(results=results)

            async def RemoveQuicMapping(self, msg: Any, **_kw: Any) -> Any:  # noqa: N802
                outer.calls.append(("remove", msg))

        return Stub()

    def call_options(self) -> dict[str, Any]:
        return {"timeout": 1}


def rule(direction: str = TO_TARGET, dcid: bytes = b"\x11" * 8, new: bytes = b"\x22" * 8,
         src: str = "10.0.1.10", tunnel: str = "stream 0") -> ForwardingRule:
    return ForwardingRule(direction, FourTuple((src, 5000), ("10.0.2.10", 4433)), dcid,
                          FourTuple(("10.0.2.10", 40001), ("10.0.3.10", 4433)), new, 7, tunnel)


def test_what_the_switch_can_apply() -> None:
    assert switch_can_apply(rule()) is None
    assert "4 bytes" in (switch_can_apply(rule(new=b"\x22" * 4)) or "")
    assert "not IPv4" in (switch_can_apply(rule(src="2001:db8::1")) or "")


def test_install_and_remove_reach_the_controller_once() -> None:
    nb = FakeNorthbound()
    table = ControllerForwardingTable(nb)

    async def run() -> None:
        await table.install(rule())
        await table.install(rule(TO_CLIENT, src="10.0.3.10"))
        await table.install(rule(new=b"\x22" * 4))      # declined: host only
        await table.install(rule(tunnel="refused"))      # the controller says no
        await table.remove(rule(new=b"\x22" * 4))       # never installed: no call
        await table.remove(rule())

    asyncio.run(run())
    kinds = [(kind, msg.direction, msg.tunnel) for kind, msg in nb.calls]
    assert kinds == [("install", TO_TARGET, "stream 0"), ("install", TO_CLIENT, "stream 0"),
                     ("install", TO_TARGET, "refused"), ("remove", TO_TARGET, "stream 0")]
    first = nb.calls[0][1]
    assert (first.src_addr, first.src_port, first.dst_port, first.out_src_port) == (
        "10.0.1.10", 5000, 4433, 40001)
    assert (first.dcid, first.new_dcid, first.rank) == (b"\x11" * 8, b"\x22" * 8, 7)
    counts = {k: v for k, v in table.stats.items() if not k.startswith("install_ms")}
    assert counts == {"installed": 2, "removed": 1, "declined": 1, "failed": 1,
                      "install_calls": 3,  # one each: they were not concurrent
                      "reinstalled": 0}
    assert 0 <= table.stats["install_ms_max"] <= table.stats["install_ms_total"]


@pytest.mark.parametrize("batched", [True, False])
def test_installs_that_queue_meanwhile_share_a_call(batched: bool) -> None:
    """While one install is on its way, the others queue and go in the next call; one
    refused mapping fails only itself. A controller without InstallQuicMappings gets
    one InstallQuicMapping per rule, with the same outcome."""
    nb = FakeNorthbound(batched=batched, delay=0.02)
    table = ControllerForwardingTable(nb)
    rules = [rule(dcid=bytes([i]) * 8, tunnel="refused" if i == 5 else f"stream {i}")
             for i in range(1, 21)]

    async def run() -> None:
        first = asyncio.create_task(table.install(rules[0]))
        await asyncio.sleep(0.005)  # the first call is in flight alone
        await asyncio.gather(first, *(table.install(r) for r in rules[1:]))

    asyncio.run(run())
    assert nb.batches == ([1, 19] if batched else [])
    assert [msg.dcid[0] for _, msg in nb.calls] == list(range(1, 21))
    assert (table.stats["installed"], table.stats["failed"]) == (19, 1)
    assert table.stats["install_calls"] == (2 if batched else 20)


@pytest.mark.parametrize("argv, expected", [
    ([], 16),
    (["--quic-forwarding"], 16),  # the proxy forwards in software: a registration is cheap
    (["--quic-forwarding", "--controller", "127.0.0.1:50060"], 4),
    (["--quic-forwarding", "--controller", "127.0.0.1:50060", "--no-switch-forwarding"], 16),
    (["--controller", "127.0.0.1:50060"], 16),  # no forwarded mode: no mapping
])
def test_fewer_registrations_by_default_when_the_switch_forwards(argv: list[str],
                                                                 expected: int) -> None:
    from hostagent.masque import proxy_cli

    args = proxy_cli.build_parser().parse_args(["--listen", "127.0.0.1:4433", *argv])
    assert args.max_connection_ids is None
    assert proxy_cli.default_max_connection_ids(args) == expected


def test_the_proxy_never_sends_more_mappings_than_the_controller_takes() -> None:
    from controller.northbound import MAX_MAPPINGS_PER_CALL
    from hostagent.masque.switch_forwarding import _InstallBatches

    assert _InstallBatches(FakeNorthbound(), {}).largest == MAX_MAPPINGS_PER_CALL
