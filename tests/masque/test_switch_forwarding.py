"""The switch-backed forwarding table: which rules it hands to the controller, in what
form, and what it declines (those stay on the proxy host's software forwarder)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hostagent.masque.forwarding import TO_CLIENT, TO_TARGET, ForwardingRule, FourTuple
from hostagent.masque.switch_forwarding import ControllerForwardingTable, switch_can_apply


class FakeNorthbound:
    """Records the controller calls; fails the ones whose tunnel says so."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def stub(self) -> Any:
        outer = self

        class Stub:
            async def InstallQuicMapping(self, msg: Any, **_kw: Any) -> Any:  # noqa: N802
                outer.calls.append(("install", msg))
                if msg.tunnel == "refused":
                    raise RuntimeError("RESOURCE_EXHAUSTED")
                return msg

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
    assert counts == {"installed": 2, "removed": 1, "declined": 1, "failed": 1}
    assert 0 <= table.stats["install_ms_max"] <= table.stats["install_ms_total"]


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
