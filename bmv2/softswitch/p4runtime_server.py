"""P4Runtime server of the built-in target, on the p4runtime protos that finsy ships.

Implements P4Runtime v1.4 for what a v1model program without meters, action profiles,
digests or a packet replication engine has, with the spec's status codes
(docs/p4runtime-conformance.md lists every case and the section it follows):
Capabilities; Set/GetForwardingPipelineConfig (VERIFY, VERIFY_AND_SAVE,
VERIFY_AND_COMMIT, COMMIT, and RECONCILE_AND_COMMIT when the pipeline does not
change); Write of table entries (incl. default entries), counters, direct counters
and registers, CONTINUE_ON_ERROR, one p4.v1.Error per update; Read with wildcards,
one p4.v1.Error per entity; StreamChannel with the spec's primary election
(`arbitration`) and PacketIn/PacketOut through the P4Info's controller packet
metadata. Malformed requests get a status code, never a crash.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from finsy.proto import p4r, p4r_grpc, rpc_code, rpc_status
from google.protobuf import any_pb2

from bmv2.softswitch.arbitration import (
    Arbitration,
    ArbitrationRefused,
    Controller,
    Notice,
    election_id_of,
)
from bmv2.softswitch.engine import Engine, EngineError, UnsupportedConstruct
from bmv2.softswitch.indexed_entries import IndexedEntries
from bmv2.softswitch.p4info_index import P4InfoError, P4InfoIndex, encode_int
from bmv2.softswitch.table_entries import EntryMetadata, TableEntries

log = logging.getLogger("mp-switch.p4runtime")

API_VERSION = "1.4.1"
PACKET_IN_BACKLOG = 4096  # PacketIns queued for a client before new ones are dropped


class RequestError(Exception):
    """A request that fails as a whole with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _grpc_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name)


def _rpc_code(name: str) -> int:
    return int(getattr(rpc_code, name, rpc_code.UNKNOWN))


@dataclass
class Pipeline:
    """A loaded forwarding pipeline: P4Info, device config, cookie, its engine, and the
    P4Runtime state the engine does not hold (entry cookies)."""

    config: p4r.ForwardingPipelineConfig
    index: P4InfoIndex
    engine: Engine
    metadata: EntryMetadata = field(default_factory=EntryMetadata)

    @property
    def tables(self) -> TableEntries:
        return TableEntries(self.index, self.engine, self.metadata)

    @property
    def indexed(self) -> IndexedEntries:
        return IndexedEntries(self.index, self.engine, self.tables)


class Stream:
    """One StreamChannel: what it arbitrated as, and the messages to send it."""

    def __init__(self) -> None:
        self.controller: Controller | None = None
        self.outbox: queue.Queue[p4r.StreamMessageResponse | ArbitrationRefused | None] = (
            queue.Queue())


class SwitchState:
    """The device behind the server: pipeline, arbitration, packet I/O, one lock."""

    def __init__(self, device_id: int, cpu_port: int | None,
                 enqueue: Callable[[int, int, Callable[[], bytes | None]], None]) -> None:
        self.device_id = device_id
        self.cpu_port = cpu_port
        #: enqueue(port, priority, leave): the traffic manager; it calls leave() when the
        #: packet leaves its queue, which runs egress and gives the frame (None: dropped)
        self.enqueue = enqueue
        # one lock: packets, table operations and primary changes are serialised, so a
        # Write in flight finishes before another client becomes primary (§5.3)
        self.lock = threading.RLock()
        self.pipeline: Pipeline | None = None
        self.saved: Pipeline | None = None  # VERIFY_AND_SAVE'd, not yet committed
        self.arbitration = Arbitration(device_id)
        self.streams: dict[Controller, Stream] = {}

    # -- arbitration ------------------------------------------------------------------------
    def deliver(self, notices: list[Notice]) -> None:
        for notice in notices:
            stream = self.streams.get(notice.controller)
            if stream is not None:
                stream.outbox.put(p4r.StreamMessageResponse(arbitration=notice.update))

    def check_writer(self, device_id: int, role: str, election_id: int | None) -> None:
        """The checks before a Write or SetForwardingPipelineConfig (§12, §14); call with
        the lock held."""
        if device_id != self.device_id:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no device {device_id}")
        if not self.arbitration.knows_role(role):
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no role {role!r}")
        if not self.arbitration.is_primary(role, election_id):
            raise RequestError(grpc.StatusCode.PERMISSION_DENIED,
                               f"election id {election_id} is not the primary's "
                               f"(role {role!r})")

    # -- packets ------------------------------------------------------------------------------
    def process(self, frame: bytes, ingress_port: int) -> None:
        """Run a frame from a port through ingress and queue it at its egress port, whose
        queue runs egress when the frame leaves (simple_switch's order); a frame to the
        CPU port goes through egress at once and to the primary as a PacketIn."""
        with self.lock:
            pipeline = self.pipeline
            if pipeline is None:
                return
            queued = pipeline.engine.ingress(frame, ingress_port)
            if queued is None:
                return
            if self.cpu_port is not None and queued.port == self.cpu_port:
                outputs = pipeline.engine.egress(queued)
            else:
                outputs = None
        if outputs is not None:
            for out in outputs:
                self.packet_in(out.frame, pipeline)
            return

        def leave() -> bytes | None:
            with self.lock:
                done = pipeline.engine.egress(queued)
            return done[0].frame if done else None

        self.enqueue(queued.port, queued.priority, leave)

    def packet_in(self, frame: bytes, pipeline: Pipeline) -> None:
        """Send a frame that reached the CPU port to the primary (§16.1)."""
        header = pipeline.index.packet_in
        if header is None:
            msg = p4r.PacketIn(payload=frame)
        else:
            metadata = [p4r.PacketMetadata(metadata_id=fid, value=encode_int(value, 0))
                        for fid, value in header.unpack(frame)]
            msg = p4r.PacketIn(payload=frame[header.size:], metadata=metadata)
        with self.lock:
            streams = [self.streams[c] for c in self.arbitration.primaries()
                       if c in self.streams]
        for stream in streams:
            if stream.outbox.qsize() >= PACKET_IN_BACKLOG:
                log.warning("PacketIn dropped: the controller is not reading its stream")
                continue
            stream.outbox.put(p4r.StreamMessageResponse(packet=msg))

    def packet_out(self, msg: p4r.PacketOut) -> None:
        """Inject a PacketOut at the CPU port; P4InfoError (the packet is dropped) when its
        metadata does not match the P4Info's packet_out header (§16.1)."""
        pipeline = self.pipeline
        if pipeline is None:
            raise P4InfoError("FAILED_PRECONDITION", "no forwarding pipeline")
        if self.cpu_port is None:
            raise P4InfoError("FAILED_PRECONDITION", "the switch has no CPU port")
        header = pipeline.index.packet_out
        frame = msg.payload
        if header is None:
            if msg.metadata:
                raise P4InfoError("INVALID_ARGUMENT", "the P4Info has no packet_out metadata")
        else:
            values = header.values_of([(m.metadata_id, m.value) for m in msg.metadata])
            frame = header.pack(values) + frame
        self.process(frame, self.cpu_port)


def _error_status(errors: list[p4r.Error]) -> rpc_status.Status:
    """The google.rpc.Status of a batch with failures: UNKNOWN, one p4.Error per item."""
    details = []
    for error in errors:
        packed = any_pb2.Any()
        packed.Pack(error)
        details.append(packed)
    failed = [e for e in errors if e.canonical_code != rpc_code.OK]
    return rpc_status.Status(code=rpc_code.UNKNOWN,
                             message=f"{len(failed)} of {len(errors)} failed: "
                             f"{failed[0].message}", details=details)


def _abort_with_details(context: grpc.ServicerContext, errors: list[p4r.Error]) -> None:
    status = _error_status(errors)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(grpc.StatusCode.UNKNOWN, status.message)


def _p4_error(exc: P4InfoError | EngineError) -> p4r.Error:
    return p4r.Error(canonical_code=_rpc_code(exc.code), message=str(exc))


class P4RuntimeServicer(p4r_grpc.P4RuntimeServicer):
    """The P4Runtime service over one `SwitchState`."""

    def __init__(self, state: SwitchState) -> None:
        self.state = state

    # -- helpers -----------------------------------------------------------------------------
    def _device(self, device_id: int) -> None:
        if device_id != self.state.device_id:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no device {device_id}")

    def _current(self) -> Pipeline:
        """The pipeline Reads and Writes refer to: a saved one once VERIFY_AND_SAVE'd (§14)."""
        pipeline = self.state.saved or self.state.pipeline
        if pipeline is None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                               "no forwarding pipeline: SetForwardingPipelineConfig first")
        return pipeline

    # -- unary RPCs --------------------------------------------------------------------------
    def Capabilities(self, request: p4r.CapabilitiesRequest,
                     context: grpc.ServicerContext) -> p4r.CapabilitiesResponse:
        if request.device_id and request.device_id != self.state.device_id:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no device {request.device_id}")
        return p4r.CapabilitiesResponse(p4runtime_api_version=API_VERSION)

    def SetForwardingPipelineConfig(self, request: p4r.SetForwardingPipelineConfigRequest,
                                    context: grpc.ServicerContext
                                    ) -> p4r.SetForwardingPipelineConfigResponse:
        try:
            with self.state.lock:
                self.state.check_writer(request.device_id, request.role,
                                        election_id_of(request))
            self._set_pipeline(request)
        except RequestError as exc:
            context.abort(exc.code, str(exc))
        return p4r.SetForwardingPipelineConfigResponse()

    @staticmethod
    def _load(request: p4r.SetForwardingPipelineConfigRequest) -> Pipeline:
        if not request.HasField("config"):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "config is missing")
        config = request.config
        if not config.HasField("p4info"):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "config.p4info is missing")
        if not config.p4_device_config:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "p4_device_config is empty")
        try:
            engine = Engine(config.p4_device_config)
        except UnsupportedConstruct as exc:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"pipeline not supported by the built-in target: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"p4_device_config is not a BMv2 JSON: {exc}") from None
        index = P4InfoIndex(config.p4info)
        missing = [t.name for t in index.tables.values() if t.name not in engine.tables]
        if missing:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"P4Info tables not in the device config: {', '.join(missing)}")
        kept = p4r.ForwardingPipelineConfig()
        kept.CopyFrom(config)
        return Pipeline(kept, index, engine)

    def _commit(self, request: p4r.SetForwardingPipelineConfigRequest,
                change: Callable[[SwitchState], None]) -> None:
        """Apply `change` if the client is still primary (it may have lost it while the
        pipeline compiled)."""
        state = self.state
        with state.lock:
            state.check_writer(request.device_id, request.role, election_id_of(request))
            change(state)

    def _set_pipeline(self, request: p4r.SetForwardingPipelineConfigRequest) -> None:
        action = request.action
        actions = p4r.SetForwardingPipelineConfigRequest
        if action == actions.VERIFY:
            self._load(request)
        elif action == actions.VERIFY_AND_SAVE:
            pipeline = self._load(request)
            self._commit(request, lambda s: setattr(s, "saved", pipeline))
        elif action == actions.VERIFY_AND_COMMIT:
            pipeline = self._load(request)

            def commit(s: SwitchState) -> None:
                s.pipeline, s.saved = pipeline, None
            self._commit(request, commit)
        elif action == actions.COMMIT:
            if request.HasField("config"):
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "COMMIT takes no config: it realizes the saved one")

            def commit_saved(s: SwitchState) -> None:
                if s.saved is None:
                    raise RequestError(grpc.StatusCode.NOT_FOUND,
                                       "no saved config to commit (VERIFY_AND_SAVE first)")
                s.pipeline, s.saved = s.saved, None
            self._commit(request, commit_saved)
        elif action == actions.RECONCILE_AND_COMMIT:
            self._reconcile(request)
        else:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"pipeline action {actions.Action.Name(action)} is not one "
                               "to perform")

    def _reconcile(self, request: p4r.SetForwardingPipelineConfigRequest) -> None:
        current = self.state.pipeline
        config = request.config
        if current is not None and request.HasField("config") and (
                current.config.p4info == config.p4info
                and current.config.p4_device_config == config.p4_device_config):
            def keep(s: SwitchState) -> None:
                if config.HasField("cookie"):
                    current.config.cookie.CopyFrom(config.cookie)
                else:
                    current.config.ClearField("cookie")
            self._commit(request, keep)
            return
        pipeline = self._load(request)
        if current is not None:
            raise RequestError(grpc.StatusCode.UNIMPLEMENTED,
                               "RECONCILE_AND_COMMIT of a different pipeline is not "
                               "supported: use VERIFY_AND_COMMIT")

        def commit(s: SwitchState) -> None:
            s.pipeline, s.saved = pipeline, None
        self._commit(request, commit)

    def GetForwardingPipelineConfig(self, request: p4r.GetForwardingPipelineConfigRequest,
                                    context: grpc.ServicerContext
                                    ) -> p4r.GetForwardingPipelineConfigResponse:
        try:
            self._device(request.device_id)
        except RequestError as exc:
            context.abort(exc.code, str(exc))
        pipeline = self.state.pipeline
        if pipeline is None:  # no config known: `config` unset (§15)
            return p4r.GetForwardingPipelineConfigResponse()
        kinds = p4r.GetForwardingPipelineConfigRequest
        config = p4r.ForwardingPipelineConfig()
        if pipeline.config.HasField("cookie"):
            config.cookie.CopyFrom(pipeline.config.cookie)
        if request.response_type in (kinds.ALL, kinds.P4INFO_AND_COOKIE):
            config.p4info.CopyFrom(pipeline.config.p4info)
        if request.response_type in (kinds.ALL, kinds.DEVICE_CONFIG_AND_COOKIE):
            config.p4_device_config = pipeline.config.p4_device_config
        return p4r.GetForwardingPipelineConfigResponse(config=config)

    def Write(self, request: p4r.WriteRequest,
              context: grpc.ServicerContext) -> p4r.WriteResponse:
        errors: list[p4r.Error] = []
        with self.state.lock:
            try:
                self.state.check_writer(request.device_id, request.role,
                                        election_id_of(request))
                pipeline = self._current()
                if request.atomicity != p4r.WriteRequest.CONTINUE_ON_ERROR:
                    raise RequestError(grpc.StatusCode.UNIMPLEMENTED,
                                       "only CONTINUE_ON_ERROR atomicity is supported")
            except RequestError as exc:
                context.abort(exc.code, str(exc))
            for update in request.updates:
                try:
                    apply_update(pipeline, update)
                    errors.append(p4r.Error(canonical_code=rpc_code.OK))
                except (P4InfoError, EngineError) as exc:
                    errors.append(_p4_error(exc))
        if any(e.canonical_code != rpc_code.OK for e in errors):
            _abort_with_details(context, errors)
        return p4r.WriteResponse()

    def Read(self, request: p4r.ReadRequest,
             context: grpc.ServicerContext) -> Iterator[p4r.ReadResponse]:
        errors: list[p4r.Error] = []
        entities: list[p4r.Entity] = []
        with self.state.lock:
            try:
                self._device(request.device_id)
                pipeline = self._current()
            except RequestError as exc:
                context.abort(exc.code, str(exc))
            for entity in request.entities:
                try:
                    entities.extend(read_entity(pipeline, entity))
                    errors.append(p4r.Error(canonical_code=rpc_code.OK))
                except (P4InfoError, EngineError) as exc:
                    errors.append(_p4_error(exc))
        for start in range(0, len(entities), 1000):
            yield p4r.ReadResponse(entities=entities[start:start + 1000])
        if any(e.canonical_code != rpc_code.OK for e in errors):
            _abort_with_details(context, errors)

    # -- stream ------------------------------------------------------------------------------
    def StreamChannel(self, request_iterator: Iterator[p4r.StreamMessageRequest],
                      context: grpc.ServicerContext) -> Iterator[p4r.StreamMessageResponse]:
        state = self.state
        stream = Stream()

        def reader() -> None:
            try:
                for msg in request_iterator:
                    if not self._on_stream_message(stream, msg):
                        return
            except grpc.RpcError:
                pass
            finally:
                stream.outbox.put(None)

        thread = threading.Thread(target=reader, daemon=True, name="p4rt-stream")
        thread.start()
        try:
            while True:
                item = stream.outbox.get()
                if item is None:
                    return
                if isinstance(item, ArbitrationRefused):
                    # arbitration errors end the stream with a status (§5.3, §16.6)
                    context.abort(_grpc_code(item.code), str(item))
                yield item
        finally:
            with state.lock:
                notices = state.arbitration.disconnect(stream.controller)
                state.streams.pop(stream.controller, None)  # type: ignore[arg-type]
            state.deliver(notices)

    def _on_stream_message(self, stream: Stream, msg: p4r.StreamMessageRequest) -> bool:
        """Handle one message; False when the stream must end."""
        state = self.state
        kind = msg.WhichOneof("update")
        if kind == "arbitration":
            with state.lock:
                try:
                    controller, notices = state.arbitration.arbitrate(stream.controller,
                                                                      msg.arbitration)
                except ArbitrationRefused as exc:
                    stream.outbox.put(exc)
                    return False
                stream.controller = controller
                state.streams[controller] = stream
            state.deliver(notices)
        elif kind == "packet":
            with state.lock:
                primary = state.arbitration.is_primary_controller(stream.controller)
            if not primary:
                self._stream_error(stream, "PERMISSION_DENIED",
                                   "PacketOut from a client that is not primary", msg.packet)
                return True
            try:
                state.packet_out(msg.packet)
            except P4InfoError as exc:  # dropped (§16.1)
                self._stream_error(stream, exc.code, str(exc), msg.packet)
        else:
            log.debug("stream message %s ignored", kind)
        return True

    @staticmethod
    def _stream_error(stream: Stream, code: str, message: str, packet: p4r.PacketOut) -> None:
        stream.outbox.put(p4r.StreamMessageResponse(error=p4r.StreamError(
            canonical_code=_rpc_code(code), message=message,
            packet_out=p4r.PacketOutError(packet_out=packet))))


def apply_update(pipeline: Pipeline, update: p4r.Update) -> None:
    """Apply one p4.v1.Update; P4InfoError/EngineError carry its status."""
    entity = update.entity
    kind = entity.WhichOneof("entity")
    if update.type == p4r.Update.UNSPECIFIED:
        raise P4InfoError("INVALID_ARGUMENT", "update type is UNSPECIFIED")
    if kind == "table_entry":
        pipeline.tables.write(update.type, entity.table_entry)
    elif kind == "counter_entry":
        pipeline.indexed.write_counter(update.type, entity.counter_entry)
    elif kind == "direct_counter_entry":
        pipeline.indexed.write_direct_counter(update.type, entity.direct_counter_entry)
    elif kind == "register_entry":
        pipeline.indexed.write_register(update.type, entity.register_entry)
    elif kind is None:
        raise P4InfoError("INVALID_ARGUMENT", "the update has no entity")
    else:
        raise P4InfoError("UNIMPLEMENTED", f"writing {kind} is not supported")


def read_entity(pipeline: Pipeline, entity: p4r.Entity) -> list[p4r.Entity]:
    """The entities one (wildcard) read request selects."""
    kind = entity.WhichOneof("entity")
    if kind == "table_entry":
        return [p4r.Entity(table_entry=te) for te in pipeline.tables.read(entity.table_entry)]
    if kind == "counter_entry":
        return pipeline.indexed.read_counters(entity.counter_entry)
    if kind == "direct_counter_entry":
        return pipeline.indexed.read_direct_counters(entity.direct_counter_entry)
    if kind == "register_entry":
        return pipeline.indexed.read_registers(entity.register_entry)
    if kind is None:
        raise P4InfoError("INVALID_ARGUMENT", "an Entity must name its kind (§13.2)")
    raise P4InfoError("UNIMPLEMENTED", f"reading {kind} is not supported")


def serve(state: SwitchState, address: str, workers: int = 32,
          credentials: grpc.ServerCredentials | None = None) -> grpc.Server:
    """Start the P4Runtime gRPC server on `address` (TLS with `credentials`, else
    plaintext); returns the running server."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                    thread_name_prefix="p4rt"))
    p4r_grpc.add_P4RuntimeServicer_to_server(P4RuntimeServicer(state), server)
    port = (server.add_secure_port(address, credentials) if credentials is not None
            else server.add_insecure_port(address))
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server

