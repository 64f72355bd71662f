"""Forwarded-mode packet forwarding: the rules, the interface a forwarder implements, and
the proxy's own software forwarder.

A `ForwardingRule` is one direction of one connection-ID mapping of
draft-ietf-masque-quic-proxy: a short-header packet arriving on `match` (its
source and destination address:port) whose Destination Connection ID starts with
`dcid` leaves from `out.src` to `out.dst` with `dcid` replaced by `new_dcid`.
Nothing else in the packet changes (identity transform).

`ForwardingTable` is the whole interface between the proxy and a forwarder:
``install(rule)`` and ``remove(rule)``. The proxy always installs into its
`SoftwareForwarder` (so forwarded mode works with no switch, and a switch's
misses still work on the host); a switch-backed table (a P4Runtime controller
writing a match on (4-tuple, DCID) and a rewrite of DCID, addresses and ports) is
given to `MasqueProxy` as an extra table and receives the same calls.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from hostagent.masque.quic_proxy_wire import is_short_header, replace_dcid

log = logging.getLogger("mp-proxy")

TO_TARGET = "to_target"
TO_CLIENT = "to_client"


@dataclass(frozen=True, order=True)
class FourTuple:
    """A UDP packet's source and destination, as (IP text, port) each."""

    src: tuple[str, int]
    dst: tuple[str, int]

    def __str__(self) -> str:
        return f"{self.src[0]}:{self.src[1]}->{self.dst[0]}:{self.dst[1]}"


@dataclass(frozen=True)
class ForwardingRule:
    """One direction of one mapping: match (4-tuple, DCID), rewrite DCID and addresses.

    `direction` is TO_TARGET (client-to-proxy 4-tuple, DCID = target VCID, rewritten
    to the target CID and sent on the proxy-to-target 4-tuple) or TO_CLIENT (the
    reverse: DCID = client CID, rewritten to the client VCID). `rank` is the
    tunnel's rank, for a scheduler on the forwarding path; `tunnel` names the
    request stream the mapping belongs to (logs, counters).
    """

    direction: str
    match: FourTuple
    dcid: bytes
    out: FourTuple
    new_dcid: bytes
    rank: int = 0
    tunnel: str = ""

    def __str__(self) -> str:
        return (f"{self.direction} {self.match} dcid {self.dcid.hex()} -> {self.out} "
                f"dcid {self.new_dcid.hex()} rank {self.rank}")


class ForwardingTable(Protocol):
    """Where forwarding rules go: the proxy's software forwarder, or a switch.

    Either call may return an awaitable (a controller round trip); the proxy does
    not wait for it before acknowledging, since its software forwarder already
    forwards whatever the switch does not.
    """

    def install(self, rule: ForwardingRule) -> None | Awaitable[None]:
        """Start forwarding packets that match `rule`."""

    def remove(self, rule: ForwardingRule) -> None | Awaitable[None]:
        """Stop forwarding packets that match `rule` (a rule not installed: no-op)."""


@dataclass
class ForwardingCounters:
    """Packets and bytes the software forwarder moved, per direction."""

    to_target_packets: int = 0
    to_target_bytes: int = 0
    to_client_packets: int = 0
    to_client_bytes: int = 0
    per_tunnel: dict[str, list[int]] = field(default_factory=dict)  # [up pkts, down pkts]


class SoftwareForwarder:
    """Forwarded mode on the proxy host: an exact match on (4-tuple, DCID prefix).

    `send(rule, packet)` transmits a rewritten packet on `rule.out` (the proxy's
    sockets glue knows which socket holds that 4-tuple). Connection IDs on one
    4-tuple never conflict (none is a prefix of another: the draft's rule, which
    the proxy enforces when it accepts a registration), so at most one rule matches.
    """

    def __init__(self, send: Callable[[ForwardingRule, bytes], None]) -> None:
        self._send = send
        self._rules: dict[FourTuple, dict[bytes, ForwardingRule]] = {}
        self._lengths: dict[FourTuple, dict[int, int]] = {}  # DCID length -> rule count
        self.counters = ForwardingCounters()

    def __len__(self) -> int:
        return sum(len(rules) for rules in self._rules.values())

    def install(self, rule: ForwardingRule) -> None:
        """Add `rule` (replacing a rule with the same 4-tuple and DCID)."""
        rules = self._rules.setdefault(rule.match, {})
        if rule.dcid not in rules:
            lengths = self._lengths.setdefault(rule.match, {})
            lengths[len(rule.dcid)] = lengths.get(len(rule.dcid), 0) + 1
        rules[rule.dcid] = rule
        log.debug("forwarding rule installed: %s", rule)

    def remove(self, rule: ForwardingRule) -> None:
        """Drop `rule` if it is installed (the same 4-tuple, DCID and rewrite)."""
        rules = self._rules.get(rule.match)
        if rules is None or rules.get(rule.dcid) != rule:
            return
        del rules[rule.dcid]
        lengths = self._lengths[rule.match]
        lengths[len(rule.dcid)] -= 1
        if not lengths[len(rule.dcid)]:
            del lengths[len(rule.dcid)]
        if not rules:
            del self._rules[rule.match]
            del self._lengths[rule.match]
        log.debug("forwarding rule removed: %s", rule)

    def lookup(self, match: FourTuple, packet: bytes) -> ForwardingRule | None:
        """The rule for a packet that arrived on `match`, or None (long header, no rule)."""
        rules = self._rules.get(match)
        if rules is None or not is_short_header(packet):
            return None
        for length in self._lengths[match]:
            if len(packet) > 1 + length:  # a packet number follows a whole DCID
                rule = rules.get(packet[1:1 + length])
                if rule is not None:
                    return rule
        return None

    def forward(self, match: FourTuple, packet: bytes) -> bool:
        """Rewrite and send `packet` if a rule matches; whether it did."""
        rule = self.lookup(match, packet)
        if rule is None:
            return False
        out = replace_dcid(packet, len(rule.dcid), rule.new_dcid)
        self._send(rule, out)
        c = self.counters
        per = c.per_tunnel.setdefault(rule.tunnel, [0, 0])
        if rule.direction == TO_TARGET:
            c.to_target_packets += 1
            c.to_target_bytes += len(out)
            per[0] += 1
        else:
            c.to_client_packets += 1
            c.to_client_bytes += len(out)
            per[1] += 1
        return True

    def rules(self) -> list[ForwardingRule]:
        """Every installed rule."""
        return [rule for rules in self._rules.values() for rule in rules.values()]
