"""QUIC-aware proxying (draft-ietf-masque-quic-proxy-06): negotiation and the
connection-ID state machines of both ends, sans-I/O.

Nothing here touches a socket or a QUIC connection. The proxy's request stream
feeds received capsules to a `ProxyCidState` and gets back `Action`s: capsules
to send, and forwarding rules to install or remove (the glue in `proxy.py` turns
those into `hostagent.masque.forwarding.ForwardingRule`s). The client's
`ClientCidState` takes the inner connection's connection IDs as they appear and
retire and the proxy's capsules, and says which virtual CIDs are usable.

Rules enforced (section numbers of the draft's "Connection ID Capsules",
"Client Considerations" and "Proxy Considerations"):

- REGISTER_CLIENT_CID, REGISTER_TARGET_CID and ACK_CLIENT_VCID are sent only by
  a client; ACK_CLIENT_CID, ACK_TARGET_CID and MAX_CONNECTION_IDS only by a proxy;
- registrations of both kinds share one sequence-number space starting at 0; the
  client may use numbers up to the proxy's MAX_CONNECTION_IDS (initially 1);
- a MAX_CONNECTION_IDS below 1 is an error;
- ACK_CLIENT_VCID only with forwarded mode; the proxy forwards to the client only
  after it; a VCID (and a stateless reset token) only with forwarded mode;
- a CLOSE_* before the matching ACK is a rejection; client CIDs that conflict (one
  a prefix of the other) on the same proxy-to-target 4-tuple are rejected.

A violation raises `ProtocolViolation`; the caller resets the request stream
with its `error_code`. The draft names one error code, H3_DATAGRAM_ERROR, for
the one violation it spells out (MAX_CONNECTION_IDS below 1); it is used for
every violation of these capsules, as RFC 9297 uses it for malformed capsules.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from hostagent.masque.quic_proxy_wire import (
    CAPSULE_NAMES,
    CLIENT_ONLY,
    DRAFT,
    FORWARDING_HEADER,
    INITIAL_MAX_SEQUENCE,
    MAX_V1_CID_LENGTH,
    PORT_SHARING_HEADER,
    PROXY_ONLY,
    TRANSFORM_IDENTITY,
    VCID_LENGTH,
    AckClientCid,
    AckClientVcid,
    AckTargetCid,
    CidCapsule,
    CloseClientCid,
    CloseTargetCid,
    MaxConnectionIds,
    RegisterClientCid,
    RegisterTargetCid,
    cids_conflict,
    forwarding_request_value,
    forwarding_response_value,
    parse_sf_boolean_item,
    transform_list,
)
from hostagent.masque.wire import H3_DATAGRAM_ERROR, WireError, sf_boolean

#: The error a violation of this draft's rules resets the request stream with.
VIOLATION_ERROR = H3_DATAGRAM_ERROR
#: Transforms this implementation can run (the scramble transform is not implemented).
SUPPORTED_TRANSFORMS = (TRANSFORM_IDENTITY,)
#: Registrations a proxy keeps active per request stream by default. An aioquic inner
#: connection holds up to 8 connection IDs of its own and 8 of the target's.
DEFAULT_MAX_ACTIVE_CIDS = 16
#: The default when a switch forwards (each registration is a switch entry and a controller
#: call): the CID in use each way and one spare each way for a rotation, so that a client
#: address's 256 mappings at the controller hold 64 tunnels instead of 16.
DEFAULT_MAX_ACTIVE_CIDS_SWITCH = 4

Headers = list[tuple[bytes, bytes]]


class ProtocolViolation(Exception):
    """The peer broke a rule of the draft: reset the request stream with `error_code`."""

    def __init__(self, reason: str, error_code: int = VIOLATION_ERROR) -> None:
        super().__init__(reason)
        self.reason, self.error_code = reason, error_code


class NoVcidAvailable(Exception):
    """No virtual connection ID free of conflicts (e.g. the client's outer connection uses
    zero-length connection IDs, which conflict with every client VCID): reject."""


class TransformNotOffered(Exception):
    """The proxy selected a transform the client did not offer: the client aborts."""


# -- negotiation -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Negotiation:
    """What the proxy agreed to for one request.

    `extension`: connection-ID capsules may be exchanged (the client sent a valid
    Proxy-QUIC-Forwarding and both ends speak the capsule protocol). `forwarding`:
    forwarded mode with `transform`. `headers`: the fields for the 2xx response.
    `reason`: why forwarded mode is off, for the log ("" when on or not asked).
    """

    extension: bool
    forwarding: bool
    transform: str | None
    headers: Headers
    reason: str = ""


def proxy_negotiate(request: Mapping[bytes, bytes], *, enabled: bool,
                    transforms: Iterable[str] = SUPPORTED_TRANSFORMS) -> Negotiation:
    """The proxy's answer to a request's Proxy-QUIC-Forwarding header.

    `enabled`: whether this proxy runs forwarded mode at all (else it answers ``?0``
    and only acknowledges connection IDs). The client's preference order wins among
    the transforms both support. Port sharing is never offered (``?0``): every
    tunnel has its own proxy-to-target socket.
    """
    raw = request.get(FORWARDING_HEADER)
    off = Negotiation(False, False, None, [])
    if raw is None:
        return off
    if not sf_boolean(request.get(b"capsule-protocol")):
        return Negotiation(False, False, None, [], "the request lacks capsule-protocol: ?1")
    try:
        wanted, params = parse_sf_boolean_item(raw)
    except (WireError, UnicodeDecodeError) as exc:  # RFC 8941: ignore a field that fails
        return Negotiation(False, False, None, [], f"unparsable {FORWARDING_HEADER.decode()}:"
                           f" {exc}")
    answer_off = [(FORWARDING_HEADER, forwarding_response_value(None)),
                  (PORT_SHARING_HEADER, b"?0")]
    if not wanted:
        return Negotiation(True, False, None, answer_off, "the client asked for ?0")
    if "accept-transform" not in params:  # the draft: ignore the header entirely
        return Negotiation(False, False, None, [], "?1 without accept-transform: ignored")
    try:
        offered = transform_list(params["accept-transform"])
    except WireError as exc:
        return Negotiation(False, False, None, [], str(exc))
    if not enabled:
        return Negotiation(True, False, None, answer_off,
                           "forwarded mode is disabled on this proxy")
    ours = set(transforms)
    chosen = next((name for name in offered if name in ours), None)
    if chosen is None:
        return Negotiation(True, False, None, answer_off,
                           f"no common transform (offered {','.join(offered) or 'none'}; "
                           f"supported {','.join(sorted(ours))})")
    return Negotiation(True, True, chosen,
                       [(FORWARDING_HEADER, forwarding_response_value(chosen)),
                        (PORT_SHARING_HEADER, b"?0")])


def client_request_headers(transforms: Iterable[str] = SUPPORTED_TRANSFORMS) -> Headers:
    """The fields a client adds to its CONNECT-UDP request to ask for forwarded mode.

    Port sharing is refused (``?0``): with it the client would have to wait for
    each registration before using a connection ID, and tunnelled mode never waits.
    """
    return [(FORWARDING_HEADER, forwarding_request_value(list(transforms))),
            (PORT_SHARING_HEADER, b"?0")]


@dataclass(frozen=True)
class ClientOutcome:
    """What the client learned from the 2xx: forwarded mode on or off, and why."""

    extension: bool
    forwarding: bool
    transform: str | None
    reason: str = ""


def client_interpret(response: Mapping[bytes, bytes],
                     offered: Iterable[str] = SUPPORTED_TRANSFORMS) -> ClientOutcome:
    """The outcome of a request that asked for forwarded mode.

    TransformNotOffered when the proxy picked a transform the client did not offer
    (the draft: the client MUST abort the request).
    """
    raw = response.get(FORWARDING_HEADER)
    if raw is None:
        return ClientOutcome(False, False, None, f"the proxy does not speak {DRAFT}")
    if not sf_boolean(response.get(b"capsule-protocol")):
        return ClientOutcome(False, False, None, "the response lacks capsule-protocol: ?1")
    try:
        value, params = parse_sf_boolean_item(raw)
    except (WireError, UnicodeDecodeError) as exc:
        return ClientOutcome(False, False, None, f"unparsable response field: {exc}")
    if not value:
        return ClientOutcome(True, False, None, "the proxy answered ?0 (no forwarded mode)")
    transform = params.get("transform")
    if not isinstance(transform, str):
        return ClientOutcome(True, False, None, "the proxy answered ?1 without a transform")
    if transform not in set(offered):
        raise TransformNotOffered(f"the proxy selected transform {transform!r}, "
                                  "which this client did not offer")
    return ClientOutcome(True, True, transform)


# -- the proxy's state machine ---------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """Send this capsule on the request stream."""

    capsule: CidCapsule


@dataclass(frozen=True)
class ToClientRule:
    """Target-to-client forwarding: packets with DCID `cid` leave with DCID `vcid`."""

    cid: bytes
    vcid: bytes


@dataclass(frozen=True)
class ToTargetRule:
    """Client-to-target forwarding: packets with DCID `vcid` leave with DCID `cid`."""

    vcid: bytes
    cid: bytes


@dataclass(frozen=True)
class Install:
    """Install a forwarding rule (before the capsule that lets the peer use it)."""

    rule: ToClientRule | ToTargetRule


@dataclass(frozen=True)
class Remove:
    """Remove a forwarding rule."""

    rule: ToClientRule | ToTargetRule


Action = Send | Install | Remove


@dataclass
class _ClientCid:
    pending: list[bytes] = field(default_factory=list)  # VCIDs sent, not yet acknowledged
    active: bytes | None = None  # the VCID the proxy forwards with (after ACK_CLIENT_VCID)
    reset_token: bytes = b""


@dataclass
class _TargetCid:
    vcid: bytes | None
    reset_token: bytes = b""


@dataclass
class ProxyCounters:
    """What one request stream's connection-ID exchange did."""

    registrations: int = 0
    rejected: int = 0
    closed_by_client: int = 0
    stale: int = 0  # acknowledgements or closes of connection IDs no longer registered


class ProxyCidState:
    """One request stream's connection-ID registrations, as the proxy keeps them.

    `new_vcid(length, client)` returns a fresh unpredictable VCID that conflicts with
    no connection ID on the client-to-proxy 4-tuple in its direction (`client`: a
    client VCID, proxy to client; else a target VCID, client to proxy), or raises
    NoVcidAvailable (the registration is then rejected).
    `client_cid_taken(cid)` says whether another request sharing this stream's
    proxy-to-target 4-tuple registered a conflicting client CID (never, when each
    tunnel has its own socket). `max_active` registrations may be active at once.
    """

    def __init__(self, *, forwarding: bool, new_vcid: Callable[[int, bool], bytes],
                 max_active: int = DEFAULT_MAX_ACTIVE_CIDS,
                 client_cid_taken: Callable[[bytes], bool] = lambda cid: False) -> None:
        if max_active < 2:
            raise ValueError("max_active must be at least 2 (the draft's initial allowance)")
        self.forwarding = forwarding
        self.max_active = max_active
        self._new_vcid = new_vcid
        self._client_cid_taken = client_cid_taken
        self.client_cids: dict[bytes, _ClientCid] = {}
        self.target_cids: dict[bytes, _TargetCid] = {}
        self.next_sequence = 0
        self.max_sequence = INITIAL_MAX_SEQUENCE  # the last value the client was told
        self.counters = ProxyCounters()

    # -- what the proxy says first ------------------------------------------------------
    def start(self) -> list[Action]:
        """Capsules to send with the 2xx: the registration allowance beyond the initial 1."""
        return self._raise_allowance()

    def _released(self) -> int:
        return self.next_sequence - len(self.client_cids) - len(self.target_cids)

    def _raise_allowance(self) -> list[Action]:
        allowed = self._released() + self.max_active - 1
        if allowed > self.max_sequence:
            self.max_sequence = allowed
            return [Send(MaxConnectionIds(allowed))]
        return []

    # -- capsules from the client -------------------------------------------------------
    def receive(self, capsule: CidCapsule) -> list[Action]:
        """Act on a capsule from the client; ProtocolViolation when it breaks a rule."""
        if capsule.TYPE in PROXY_ONLY:
            raise ProtocolViolation(f"the client sent {CAPSULE_NAMES[capsule.TYPE]}, "
                                    "which only a proxy may send")
        if isinstance(capsule, (RegisterClientCid, RegisterTargetCid)):
            sequence = self.next_sequence
            if sequence > self.max_sequence:
                raise ProtocolViolation(
                    f"{CAPSULE_NAMES[capsule.TYPE]} with sequence number {sequence} exceeds "
                    f"MAX_CONNECTION_IDS {self.max_sequence}")
            self.next_sequence += 1
            self.counters.registrations += 1
            if isinstance(capsule, RegisterClientCid):
                actions = self._register_client(capsule.cid)
            else:
                actions = self._register_target(capsule.cid, capsule.reset_token)
            return actions + self._raise_allowance()
        if isinstance(capsule, AckClientVcid):
            return self._ack_client_vcid(capsule)
        if isinstance(capsule, CloseClientCid):
            return self._close_client(capsule.cid, by_client=True)
        if isinstance(capsule, CloseTargetCid):
            return self._close_target(capsule.cid, by_client=True)
        raise AssertionError(f"unhandled capsule {capsule!r}")  # pragma: no cover

    def _register_client(self, cid: bytes) -> list[Action]:
        conflict = next((other for other in self.client_cids
                         if other != cid and cids_conflict(other, cid)), None)
        reason = None
        if conflict is not None:
            reason = f"conflicts with registered client CID {conflict.hex()}"
        elif self._client_cid_taken(cid):
            reason = "conflicts with a client CID on the shared proxy-to-target 4-tuple"
        elif self.forwarding and len(cid) > MAX_V1_CID_LENGTH:
            # the client VCID must be at least as long, and a valid QUIC v1 length
            reason = f"{len(cid)}-byte client CID: no valid client VCID is as long"
        if reason is not None:
            self.counters.rejected += 1
            return [Send(CloseClientCid(cid))]
        actions: list[Action] = []
        entry = self.client_cids.get(cid)
        if entry is None:
            entry = self.client_cids[cid] = _ClientCid()
        elif entry.active is not None:
            # re-registration solicits a new VCID: stop using the old bytes right away
            actions.append(Remove(ToClientRule(cid, entry.active)))
            entry.active = None
        if not self.forwarding:
            return [*actions, Send(AckClientCid(cid, b""))]
        try:
            vcid = self._new_vcid(max(VCID_LENGTH, len(cid)), True)
        except NoVcidAvailable:
            self.counters.rejected += 1
            if not entry.pending and entry.active is None:
                del self.client_cids[cid]
            return [*actions, Send(CloseClientCid(cid))]
        entry.pending.append(vcid)
        return [*actions, Send(AckClientCid(cid, vcid))]

    def _register_target(self, cid: bytes, reset_token: bytes) -> list[Action]:
        actions: list[Action] = []
        old = self.target_cids.get(cid)
        if old is not None and old.vcid is not None:
            actions.append(Remove(ToTargetRule(old.vcid, cid)))
        if not self.forwarding:
            self.target_cids[cid] = _TargetCid(None, reset_token)
            return [*actions, Send(AckTargetCid(cid, b"", b""))]
        try:
            vcid = self._new_vcid(VCID_LENGTH, False)
        except NoVcidAvailable:
            self.counters.rejected += 1
            self.target_cids.pop(cid, None)
            return [*actions, Send(CloseTargetCid(cid))]
        self.target_cids[cid] = _TargetCid(vcid, reset_token)
        # the rule is in place before the client learns the VCID; no reset token of ours
        return [*actions, Install(ToTargetRule(vcid, cid)), Send(AckTargetCid(cid, vcid, b""))]

    def _ack_client_vcid(self, capsule: AckClientVcid) -> list[Action]:
        if not self.forwarding:
            raise ProtocolViolation("ACK_CLIENT_VCID without forwarded mode")
        entry = self.client_cids.get(capsule.cid)
        if entry is None or capsule.vcid not in entry.pending:
            self.counters.stale += 1  # closed or superseded meanwhile
            return []
        actions: list[Action] = []
        if entry.active is not None:
            actions.append(Remove(ToClientRule(capsule.cid, entry.active)))
        entry.pending.clear()
        entry.active = capsule.vcid
        entry.reset_token = capsule.reset_token
        return [*actions, Install(ToClientRule(capsule.cid, capsule.vcid))]

    def _close_client(self, cid: bytes, by_client: bool) -> list[Action]:
        entry = self.client_cids.pop(cid, None)
        if entry is None:
            if by_client:
                self.counters.stale += 1
            return []
        if by_client:
            self.counters.closed_by_client += 1
        actions: list[Action] = []
        if entry.active is not None:
            actions.append(Remove(ToClientRule(cid, entry.active)))
        if not by_client:
            actions.append(Send(CloseClientCid(cid)))
        return actions + self._raise_allowance()

    def _close_target(self, cid: bytes, by_client: bool) -> list[Action]:
        entry = self.target_cids.pop(cid, None)
        if entry is None:
            if by_client:
                self.counters.stale += 1
            return []
        if by_client:
            self.counters.closed_by_client += 1
        actions: list[Action] = []
        if entry.vcid is not None:
            actions.append(Remove(ToTargetRule(entry.vcid, cid)))
        if not by_client:
            actions.append(Send(CloseTargetCid(cid)))
        return actions + self._raise_allowance()

    # -- the proxy's own decisions --------------------------------------------------------
    def close_client_cid(self, cid: bytes) -> list[Action]:
        """The proxy stops forwarding to this client CID (CLOSE_CLIENT_CID to the client)."""
        return self._close_client(cid, by_client=False)

    def close_target_cid(self, cid: bytes) -> list[Action]:
        """The proxy stops forwarding to this target CID (CLOSE_TARGET_CID to the client)."""
        return self._close_target(cid, by_client=False)

    def rules(self) -> list[ToClientRule | ToTargetRule]:
        """Every rule in force (the stream is closing: remove them all)."""
        out: list[ToClientRule | ToTargetRule] = [
            ToClientRule(cid, e.active) for cid, e in self.client_cids.items()
            if e.active is not None]
        out += [ToTargetRule(e.vcid, cid) for cid, e in self.target_cids.items()
                if e.vcid is not None]
        return out


# -- the client's state machine --------------------------------------------------------------

@dataclass(frozen=True)
class ClientVcidReady:
    """Forwarded packets with DCID `vcid` are for client CID `cid` (accept them)."""

    cid: bytes
    vcid: bytes


@dataclass(frozen=True)
class ClientVcidGone:
    """Stop accepting forwarded packets with this client VCID."""

    cid: bytes
    vcid: bytes


@dataclass(frozen=True)
class TargetVcidReady:
    """Short-header packets to target CID `cid` may be forwarded with DCID `vcid`."""

    cid: bytes
    vcid: bytes


@dataclass(frozen=True)
class TargetVcidGone:
    """Packets to target CID `cid` go back to the tunnel."""

    cid: bytes
    vcid: bytes


@dataclass(frozen=True)
class Rejected:
    """The proxy refused (or the client refused the proxy's VCID for) a registration."""

    kind: str  # "client" or "target"
    cid: bytes
    reason: str


ClientEvent = ClientVcidReady | ClientVcidGone | TargetVcidReady | TargetVcidGone | Rejected


@dataclass
class ClientCounters:
    """What one tunnel's connection-ID exchange did, as the client sees it."""

    registered: int = 0
    queued: int = 0  # registrations that waited for MAX_CONNECTION_IDS
    rejected: int = 0
    closed_by_proxy: int = 0
    stale: int = 0


@dataclass
class _ClientReg:
    acked: bool = False
    vcid: bytes | None = None  # the client VCID accepted (after our ACK_CLIENT_VCID)


@dataclass
class _TargetReg:
    acked: bool = False
    vcid: bytes | None = None  # the target VCID in use


class ClientCidState:
    """One tunnel's registrations, as the client keeps them.

    The caller reports the inner connection's connection IDs (`add_client_cid` when
    it issues one, `retire_client_cid` when it is retired; likewise for the
    target's) and feeds the proxy's capsules to `receive`. Each call returns
    (capsules to send, events). Registrations that do not fit the proxy's
    allowance wait for MAX_CONNECTION_IDS; until they are acknowledged the
    packets concerned simply stay in the tunnel. `outer_cids()` gives the client's
    own connection IDs on the client-to-proxy connection: a client VCID that
    conflicts with one of them is refused.
    """

    def __init__(self, *, forwarding: bool,
                 outer_cids: Callable[[], Iterable[bytes]] = tuple) -> None:
        self.forwarding = forwarding
        self._outer_cids = outer_cids
        self.next_sequence = 0
        self.max_sequence = INITIAL_MAX_SEQUENCE
        self.client: dict[bytes, _ClientReg] = {}
        self.target: dict[bytes, _TargetReg] = {}
        self._queue: deque[CidCapsule] = deque()
        #: registrations refused either way or closed by the proxy: not offered again while
    #: the connection ID lives
        self.refused_client: set[bytes] = set()
        self.refused_target: set[bytes] = set()
        self.counters = ClientCounters()

    # -- the inner connection's connection IDs ------------------------------------------
    def _register(self, capsule: RegisterClientCid | RegisterTargetCid) -> list[CidCapsule]:
        if self.next_sequence > self.max_sequence:
            self._queue.append(capsule)
            self.counters.queued += 1
            return []
        self.next_sequence += 1
        self.counters.registered += 1
        return [capsule]

    def add_client_cid(self, cid: bytes) -> list[CidCapsule]:
        """A connection ID the client issued to the target: register it."""
        if cid in self.client or cid in self.refused_client:
            return []
        self.client[cid] = _ClientReg()
        return self._register(RegisterClientCid(cid))

    def add_target_cid(self, cid: bytes, reset_token: bytes = b"") -> list[CidCapsule]:
        """A connection ID the target issued: register it (with its reset token)."""
        if cid in self.target or cid in self.refused_target:
            return []
        self.target[cid] = _TargetReg()
        return self._register(RegisterTargetCid(cid, reset_token))

    def _unqueue(self, kind: type, cid: bytes) -> bool:
        for capsule in list(self._queue):
            if isinstance(capsule, kind) and capsule.cid == cid:  # type: ignore[union-attr]
                self._queue.remove(capsule)
                return True
        return False

    def retire_client_cid(self, cid: bytes) -> tuple[list[CidCapsule], list[ClientEvent]]:
        """The client's connection ID was retired: close its registration."""
        self.refused_client.discard(cid)
        reg = self.client.pop(cid, None)
        if reg is None:
            return [], []
        if self._unqueue(RegisterClientCid, cid):
            return [], []
        events: list[ClientEvent] = []
        if reg.vcid is not None:
            events.append(ClientVcidGone(cid, reg.vcid))
        return [CloseClientCid(cid)], events

    def retire_target_cid(self, cid: bytes) -> tuple[list[CidCapsule], list[ClientEvent]]:
        """The target's connection ID was retired: close its registration."""
        self.refused_target.discard(cid)
        reg = self.target.pop(cid, None)
        if reg is None:
            return [], []
        if self._unqueue(RegisterTargetCid, cid):
            return [], []
        events: list[ClientEvent] = []
        if reg.vcid is not None:
            events.append(TargetVcidGone(cid, reg.vcid))
        return [CloseTargetCid(cid)], events

    # -- capsules from the proxy ----------------------------------------------------------
    def receive(self, capsule: CidCapsule) -> tuple[list[CidCapsule], list[ClientEvent]]:
        """Act on a capsule from the proxy; ProtocolViolation when it breaks a rule."""
        if capsule.TYPE in CLIENT_ONLY:
            raise ProtocolViolation(f"the proxy sent {CAPSULE_NAMES[capsule.TYPE]}, "
                                    "which only a client may send")
        if isinstance(capsule, MaxConnectionIds):
            if capsule.max_sequence < 1:
                raise ProtocolViolation(
                    f"MAX_CONNECTION_IDS {capsule.max_sequence} is below 1")
            self.max_sequence = max(self.max_sequence, capsule.max_sequence)
            sent: list[CidCapsule] = []
            while self._queue and self.next_sequence <= self.max_sequence:
                self.next_sequence += 1
                self.counters.registered += 1
                sent.append(self._queue.popleft())
            return sent, []
        if isinstance(capsule, AckClientCid):
            return self._ack_client(capsule)
        if isinstance(capsule, AckTargetCid):
            return self._ack_target(capsule)
        if isinstance(capsule, CloseClientCid):
            reg = self.client.pop(capsule.cid, None)
            if reg is None:
                self.counters.stale += 1
                return [], []
            self.refused_client.add(capsule.cid)  # the proxy does not want it: not again
            if not reg.acked:
                self.counters.rejected += 1
                return [], [Rejected("client", capsule.cid, "CLOSE_CLIENT_CID before an ACK")]
            self.counters.closed_by_proxy += 1
            return [], ([ClientVcidGone(capsule.cid, reg.vcid)] if reg.vcid else [])
        if isinstance(capsule, CloseTargetCid):
            treg = self.target.pop(capsule.cid, None)
            if treg is None:
                self.counters.stale += 1
                return [], []
            self.refused_target.add(capsule.cid)  # the proxy does not want it: not again
            if not treg.acked:
                self.counters.rejected += 1
                return [], [Rejected("target", capsule.cid, "CLOSE_TARGET_CID before an ACK")]
            self.counters.closed_by_proxy += 1
            return [], ([TargetVcidGone(capsule.cid, treg.vcid)] if treg.vcid else [])
        raise AssertionError(f"unhandled capsule {capsule!r}")  # pragma: no cover

    def _check_vcid(self, vcid: bytes) -> None:
        if vcid and not self.forwarding:
            raise ProtocolViolation("a virtual connection ID without forwarded mode")
        if len(vcid) > MAX_V1_CID_LENGTH:
            raise ProtocolViolation(f"a {len(vcid)}-byte virtual connection ID is not a "
                                    "valid QUIC v1 connection ID")

    def _ack_client(self, capsule: AckClientCid) -> tuple[list[CidCapsule], list[ClientEvent]]:
        self._check_vcid(capsule.vcid)
        reg = self.client.get(capsule.cid)
        if reg is None:
            self.counters.stale += 1
            return [], []
        reg.acked = True
        if not capsule.vcid:
            return [], []
        reason = None
        if len(capsule.vcid) < len(capsule.cid):
            reason = "client VCID shorter than the client CID"
        elif any(cids_conflict(capsule.vcid, c) for c in self._outer_cids()):
            reason = "client VCID conflicts with a connection ID of the outer connection"
        elif any(r.vcid is not None and cid != capsule.cid and cids_conflict(capsule.vcid,
                                                                              r.vcid)
                 for cid, r in self.client.items()):
            reason = "client VCID conflicts with another client VCID"
        if reason is not None:  # CLOSE without ACK_CLIENT_VCID rejects the VCID
            del self.client[capsule.cid]
            self.refused_client.add(capsule.cid)
            self.counters.rejected += 1
            events: list[ClientEvent] = [Rejected("client", capsule.cid, reason)]
            if reg.vcid is not None:
                events.insert(0, ClientVcidGone(capsule.cid, reg.vcid))
            return [CloseClientCid(capsule.cid)], events
        events = []
        if reg.vcid is not None and reg.vcid != capsule.vcid:
            events.append(ClientVcidGone(capsule.cid, reg.vcid))
        reg.vcid = capsule.vcid
        # ready to receive before the proxy learns it may send
        events.append(ClientVcidReady(capsule.cid, capsule.vcid))
        return [AckClientVcid(capsule.cid, capsule.vcid, b"")], events

    def _ack_target(self, capsule: AckTargetCid) -> tuple[list[CidCapsule], list[ClientEvent]]:
        self._check_vcid(capsule.vcid)
        if capsule.reset_token and not self.forwarding:
            raise ProtocolViolation("a stateless reset token without forwarded mode")
        reg = self.target.get(capsule.cid)
        if reg is None:
            self.counters.stale += 1
            return [], []
        reg.acked = True
        events: list[ClientEvent] = []
        if reg.vcid is not None and reg.vcid != capsule.vcid:
            events.append(TargetVcidGone(capsule.cid, reg.vcid))
        reg.vcid = capsule.vcid or None
        if reg.vcid is not None:
            events.append(TargetVcidReady(capsule.cid, reg.vcid))
        return [], events

    def target_vcid(self, cid: bytes) -> bytes | None:
        """The VCID to forward packets for target CID `cid` with, if there is one."""
        reg = self.target.get(cid)
        return None if reg is None else reg.vcid

    def close_all(self) -> list[ClientEvent]:
        """The tunnel is going away: every VCID stops being usable."""
        events: list[ClientEvent] = [ClientVcidGone(c, r.vcid) for c, r in self.client.items()
                                     if r.vcid is not None]
        events += [TargetVcidGone(c, r.vcid) for c, r in self.target.items()
                   if r.vcid is not None]
        self.client.clear()
        self.target.clear()
        self._queue.clear()
        return events
