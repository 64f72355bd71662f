"""Primary election among P4Runtime clients, as the spec words it (§5.3, §5.4, §16.2).

Sans-I/O: the server calls `arbitrate()` for each MasterArbitrationUpdate a stream
sends and `disconnect()` when a stream ends; both return the advisory notices to
send (who gets which MasterArbitrationUpdate), and `arbitrate()` raises
`ArbitrationRefused` when the spec says to end the stream with a status.

The spec's rules, per (device_id, role):
- the primary is the live client whose election id is the highest the server has
  ever received (`election_id_past`); a client with a lower id is a backup, and a
  client without an election id is always a backup (§16.2.1);
- when the primary disconnects, there is no primary until a client sends an
  update with an election id >= election_id_past (§5: "the server will be without
  a primary controller until a client sends a successful MasterArbitrationUpdate");
  BMv2 instead promotes the live client with the next highest id at once;
- notices carry election_id_past (unset if no client was ever primary) and a status
  of OK for the primary, ALREADY_EXISTS for backups while there is a primary, and
  NOT_FOUND for everyone while there is none (§5.4).
Every role has full pipeline access: a role.config would need an out-of-band scheme,
which this target has none of, so it is refused (§5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from finsy.proto import p4r, rpc_code, rpc_status

MAX_CONTROLLERS = 16  # live streams per (device, role), as BMv2's server


class ArbitrationRefused(Exception):
    """End the stream with this gRPC status (a grpc.StatusCode name) and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class Controller:
    """A stream that sent a successful MasterArbitrationUpdate."""

    device_id: int
    role: str
    election_id: int | None  # None: unset, lower than any (§16.2.1)


@dataclass(frozen=True)
class Notice:
    """One advisory MasterArbitrationUpdate for `controller`."""

    controller: Controller
    update: p4r.MasterArbitrationUpdate


@dataclass
class _Role:
    live: list[Controller] = field(default_factory=list)
    past: int | None = None  # highest election id ever received for this role
    primary: Controller | None = None


def election_id_of(update: p4r.MasterArbitrationUpdate | p4r.WriteRequest
                   | p4r.SetForwardingPipelineConfigRequest) -> int | None:
    """The 128-bit election id of a message; None when the field is unset."""
    if not update.HasField("election_id"):
        return None
    return (update.election_id.high << 64) | update.election_id.low


class Arbitration:
    """The primary and backups of one device, for every role."""

    def __init__(self, device_id: int, max_controllers: int = MAX_CONTROLLERS) -> None:
        self.device_id = device_id
        self.max_controllers = max_controllers
        self._roles: dict[str, _Role] = {"": _Role()}

    # -- queries ------------------------------------------------------------------------------
    def knows_role(self, role: str) -> bool:
        """True for the default role and any role a client arbitrated for."""
        return role in self._roles

    def is_primary(self, role: str, election_id: int | None) -> bool:
        """Whether a request with this (role, election id) comes from the primary."""
        state = self._roles.get(role)
        return (state is not None and state.primary is not None and election_id is not None
                and state.primary.election_id == election_id)

    def primaries(self) -> list[Controller]:
        """The primary of every role that has one (the receivers of PacketIn)."""
        return [s.primary for s in self._roles.values() if s.primary is not None]

    def is_primary_controller(self, controller: Controller | None) -> bool:
        return controller is not None and any(controller is p for p in self.primaries())

    # -- updates ------------------------------------------------------------------------------
    def arbitrate(self, current: Controller | None, update: p4r.MasterArbitrationUpdate
                  ) -> tuple[Controller, list[Notice]]:
        """Apply one MasterArbitrationUpdate from a stream (`current`: what it sent before,
        None for its first). Returns the stream's controller and the notices to send."""
        role = update.role.name if update.HasField("role") else ""
        election_id = election_id_of(update)
        if current is None:
            if update.device_id != self.device_id:
                raise ArbitrationRefused("NOT_FOUND", f"no device {update.device_id}")
        else:
            if update.device_id != current.device_id:
                raise ArbitrationRefused("FAILED_PRECONDITION",
                                         f"this stream is for device {current.device_id}, "
                                         f"not {update.device_id}")
            if role != current.role:
                raise ArbitrationRefused("FAILED_PRECONDITION",
                                         f"this stream is for role {current.role!r}: open "
                                         "another stream to change role")
        if update.HasField("role") and update.role.HasField("config"):
            raise ArbitrationRefused("INVALID_ARGUMENT",
                                     "role.config is not supported: every role has full "
                                     "pipeline access")
        state = self._roles.setdefault(role, _Role())
        if election_id is not None and any(
                c is not current and c.election_id == election_id for c in state.live):
            raise ArbitrationRefused("INVALID_ARGUMENT",
                                     f"election id {election_id} is used by another client "
                                     f"of role {role!r}")
        if current is None:
            if len(state.live) >= self.max_controllers:
                raise ArbitrationRefused("RESOURCE_EXHAUSTED",
                                         f"{self.max_controllers} clients already")
            current = Controller(update.device_id, role, election_id)
            state.live.append(current)
        else:
            current.election_id = election_id
        return current, self._elect(state, current)

    def _elect(self, state: _Role, controller: Controller) -> list[Notice]:
        previous = state.primary
        eid = controller.election_id
        if eid is not None and (state.past is None or eid >= state.past):
            state.past = eid
            state.primary = controller
            if previous is None:
                return self._notices(state, state.live)
            others = [c for c in state.live if c is not controller]
            return self._notices(state, others + [controller])
        if previous is controller:  # the primary downgraded itself
            state.primary = None
            return self._notices(state, state.live)
        return self._notices(state, [controller])

    def disconnect(self, controller: Controller | None) -> list[Notice]:
        """A stream ended; returns the notices for the others if it was primary."""
        if controller is None:
            return []
        state = self._roles[controller.role]
        if controller in state.live:
            state.live.remove(controller)
        if state.primary is not controller:
            return []
        state.primary = None
        return self._notices(state, state.live)

    def _notices(self, state: _Role, receivers: list[Controller]) -> list[Notice]:
        notices = []
        for receiver in receivers:
            if state.primary is None:
                code, message = rpc_code.NOT_FOUND, "no primary"
            elif receiver is state.primary:
                code, message = rpc_code.OK, "primary"
            else:
                code, message = rpc_code.ALREADY_EXISTS, "backup: another client is primary"
            update = p4r.MasterArbitrationUpdate(
                device_id=receiver.device_id,
                status=rpc_status.Status(code=code, message=message))
            if receiver.role:
                update.role.name = receiver.role
            if state.past is not None:
                high, low = divmod(state.past, 1 << 64)
                update.election_id.CopyFrom(p4r.Uint128(high=high, low=low))
            notices.append(Notice(receiver, update))
        return notices
