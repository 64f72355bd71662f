"""A raw P4Runtime client for the conformance suite: the protos finsy ships, grpc stubs,
and outcomes reduced to status-code names so that a case compares one string.

Deliberately independent of controller/p4runtime.py: the suite checks the servers,
so it must be able to send what a well-behaved client never would.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from finsy.proto import p4i, p4r, p4r_grpc, rpc_code, rpc_status
from google.protobuf import text_format

from p4src.pipeline import BMV2_JSON, P4INFO

TIMEOUT = 10.0  # seconds: the bound on every wait (a failure, never a measurement)


def code_name(value: int) -> str:
    """google.rpc.Code number -> name ("OK", "INVALID_ARGUMENT", ...)."""
    return rpc_code.Code.Name(value)


def p4info() -> p4i.P4Info:
    return text_format.Parse(P4INFO.read_text(), p4i.P4Info())


def pipeline_config(cookie: int | None = 1) -> p4r.ForwardingPipelineConfig:
    """The committed program as a ForwardingPipelineConfig."""
    config = p4r.ForwardingPipelineConfig(p4info=p4info(),
                                          p4_device_config=BMV2_JSON.read_bytes())
    if cookie is not None:
        config.cookie.cookie = cookie
    return config


def uint128(value: int) -> p4r.Uint128:
    return p4r.Uint128(high=value >> 64, low=value & ((1 << 64) - 1))


@dataclass
class Outcome:
    """A unary RPC's result: its status name, message and per-item p4.Error codes."""

    code: str
    message: str = ""
    items: list[str] = field(default_factory=list)
    entities: list[p4r.Entity] = field(default_factory=list)
    reply: object = None

    @property
    def item(self) -> str:
        """The status of a one-update (one-entity) batch: its p4.Error if the batch failed
        with UNKNOWN and details, else the RPC's own status."""
        if self.code == "UNKNOWN" and len(self.items) == 1:
            return self.items[0]
        return self.code


def _outcome(exc: grpc.RpcError) -> Outcome:
    code = exc.code().name  # type: ignore[attr-defined]
    items: list[str] = []
    for key, value in exc.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = rpc_status.Status.FromString(value)
            for detail in status.details:
                error = p4r.Error()
                detail.Unpack(error)
                items.append(code_name(error.canonical_code))
    return Outcome(code, exc.details() or "", items)  # type: ignore[attr-defined]


class Client:
    """Unary RPCs to one P4Runtime server."""

    def __init__(self, address: str, device_id: int,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self.address = address
        self.device_id = device_id
        self.channel = (grpc.secure_channel(address, credentials) if credentials
                        else grpc.insecure_channel(address))
        self.stub = p4r_grpc.P4RuntimeStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def capabilities(self, device_id: int = 0) -> Outcome:
        try:
            reply = self.stub.Capabilities(p4r.CapabilitiesRequest(device_id=device_id),
                                           timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return _outcome(exc)
        return Outcome("OK", reply=reply)

    def write(self, updates: list[p4r.Update], election_id: int | None,
              device_id: int | None = None, role: str = "",
              atomicity: int = p4r.WriteRequest.CONTINUE_ON_ERROR) -> Outcome:
        request = p4r.WriteRequest(
            device_id=self.device_id if device_id is None else device_id, role=role,
            updates=updates, atomicity=atomicity)  # type: ignore[arg-type]
        if election_id is not None:
            request.election_id.CopyFrom(uint128(election_id))
        try:
            self.stub.Write(request, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return _outcome(exc)
        return Outcome("OK")

    def read(self, entities: list[p4r.Entity], device_id: int | None = None) -> Outcome:
        request = p4r.ReadRequest(device_id=self.device_id if device_id is None else device_id,
                                  entities=entities)
        found: list[p4r.Entity] = []
        try:
            for reply in self.stub.Read(request, timeout=TIMEOUT):
                found.extend(reply.entities)
        except grpc.RpcError as exc:
            out = _outcome(exc)
            out.entities = found
            return out
        return Outcome("OK", entities=found)

    def set_pipeline(self, action: int, config: p4r.ForwardingPipelineConfig | None,
                     election_id: int | None, device_id: int | None = None,
                     role: str = "") -> Outcome:
        request = p4r.SetForwardingPipelineConfigRequest(
            device_id=self.device_id if device_id is None else device_id, role=role,
            action=action)  # type: ignore[arg-type]
        if config is not None:
            request.config.CopyFrom(config)
        if election_id is not None:
            request.election_id.CopyFrom(uint128(election_id))
        try:
            self.stub.SetForwardingPipelineConfig(request, timeout=60)
        except grpc.RpcError as exc:
            return _outcome(exc)
        return Outcome("OK")

    def get_pipeline(self, response_type: int = 0, device_id: int | None = None) -> Outcome:
        request = p4r.GetForwardingPipelineConfigRequest(
            device_id=self.device_id if device_id is None else device_id,
            response_type=response_type)  # type: ignore[arg-type]
        try:
            reply = self.stub.GetForwardingPipelineConfig(request, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return _outcome(exc)
        return Outcome("OK", reply=reply)

    def stream(self) -> Stream:
        return Stream(self.stub)


@dataclass(frozen=True)
class Ended:
    """The stream ended with this status name."""

    code: str
    message: str = ""


@dataclass(frozen=True)
class Silence:
    """Nothing came within the wait (a bound for a failure, not a measurement)."""


class Stream:
    """One StreamChannel: requests go out through a queue, responses come in on a thread."""

    def __init__(self, stub: p4r_grpc.P4RuntimeStub) -> None:
        self._out: queue.Queue[p4r.StreamMessageRequest | None] = queue.Queue()
        self._in: queue.Queue[p4r.StreamMessageResponse | Ended] = queue.Queue()
        self.call = stub.StreamChannel(self._requests())
        self._thread = threading.Thread(target=self._receive, daemon=True, name="p4rt-test")
        self._thread.start()
        self.ended: Ended | None = None

    def _requests(self) -> Iterator[p4r.StreamMessageRequest]:
        while True:
            msg = self._out.get()
            if msg is None:
                return
            yield msg

    def _receive(self) -> None:
        try:
            for msg in self.call:
                self._in.put(msg)
            self._in.put(Ended("OK"))
        except grpc.RpcError as exc:
            self._in.put(Ended(exc.code().name, exc.details() or ""))  # type: ignore[attr-defined]

    def send(self, msg: p4r.StreamMessageRequest) -> None:
        self._out.put(msg)

    def arbitrate(self, election_id: int | None, device_id: int, role: str | None = None,
                  role_config: bool = False) -> None:
        update = p4r.MasterArbitrationUpdate(device_id=device_id)
        if election_id is not None:
            update.election_id.CopyFrom(uint128(election_id))
        if role is not None:
            update.role.name = role
        if role_config:
            update.role.config.Pack(p4r.Uint128(high=0, low=1))  # any message: no scheme
        self.send(p4r.StreamMessageRequest(arbitration=update))

    def packet_out(self, payload: bytes, metadata: list[tuple[int, bytes]]) -> None:
        self.send(p4r.StreamMessageRequest(packet=p4r.PacketOut(
            payload=payload,
            metadata=[p4r.PacketMetadata(metadata_id=i, value=v) for i, v in metadata])))

    def next(self, timeout: float = TIMEOUT) -> p4r.StreamMessageResponse | Ended:
        """The next message, or Ended; queue.Empty after `timeout` seconds."""
        if self.ended is not None:
            return self.ended
        item = self._in.get(timeout=timeout)
        if isinstance(item, Ended):
            self.ended = item
        return item

    def next_of(self, kind: str, timeout: float = TIMEOUT
                ) -> p4r.StreamMessageResponse | Ended:
        """The next message of `kind` ('arbitration', 'packet', 'error'), skipping others,
        or Ended."""
        while True:
            item = self.next(timeout)
            if isinstance(item, Ended) or item.WhichOneof("update") == kind:
                return item

    def arbitration(self, timeout: float = TIMEOUT
                    ) -> p4r.MasterArbitrationUpdate | Ended | Silence:
        """The next arbitration notice, Ended, or Silence if none comes in `timeout` s."""
        try:
            item = self.next_of("arbitration", timeout)
        except queue.Empty:
            return Silence()
        return item if isinstance(item, Ended) else item.arbitration

    def close(self) -> None:
        """Disconnect (cancel the RPC, as a client process that goes away)."""
        self._out.put(None)
        self.call.cancel()
        self._thread.join(TIMEOUT)


def status_of(update: p4r.MasterArbitrationUpdate | Ended | Silence) -> str:
    """An arbitration notice as 'OK' / 'ALREADY_EXISTS' / 'NOT_FOUND', 'ended:CODE', or
    'no notice'."""
    if isinstance(update, Silence):
        return "no notice"
    if isinstance(update, Ended):
        return f"ended:{update.code}"
    return code_name(update.status.code)


def election_of(update: p4r.MasterArbitrationUpdate) -> int | None:
    if not update.HasField("election_id"):
        return None
    return (update.election_id.high << 64) | update.election_id.low
