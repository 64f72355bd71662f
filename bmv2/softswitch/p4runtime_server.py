"""P4Runtime server of the built-in target, on the p4runtime protos that finsy ships.

Implements what the project's controller and tests use, with the spec's status
codes: Capabilities; Set/GetForwardingPipelineConfig (VERIFY, VERIFY_AND_SAVE,
VERIFY_AND_COMMIT, COMMIT, and RECONCILE_AND_COMMIT when the pipeline does not
change); Write of table entries (incl. default entries), counters, direct
counters and registers, in batches with one p4.v1.Error per update; Read with
wildcards; StreamChannel with primary arbitration by election id and
PacketIn/PacketOut through the P4Info's controller packet metadata.
Malformed requests get INVALID_ARGUMENT or NOT_FOUND, never a crash.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from finsy.proto import p4d, p4i, p4r, p4r_grpc, rpc_code, rpc_status
from google.protobuf import any_pb2

from bmv2.softswitch.engine import Engine, EngineError, MatchKey, Output, UnsupportedConstruct
from bmv2.softswitch.p4info_index import P4InfoError, P4InfoIndex, decode_int, encode_int

log = logging.getLogger("mp-switch.p4runtime")

API_VERSION = "1.3.0"
CODES = {name: getattr(rpc_code, name) for name in (
    "OK", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED",
    "PERMISSION_DENIED", "FAILED_PRECONDITION", "UNIMPLEMENTED", "UNKNOWN")}
GRPC_CODES = {getattr(rpc_code, c.name, None): c for c in grpc.StatusCode}


class RequestError(Exception):
    """A request that fails as a whole with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _grpc_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name)


@dataclass
class Pipeline:
    """A loaded forwarding pipeline: P4Info, device config, cookie and its engine."""

    config: p4r.ForwardingPipelineConfig
    index: P4InfoIndex
    engine: Engine


class Client:
    """One StreamChannel: its election id and the queue of messages to send it."""

    def __init__(self) -> None:
        self.election_id: int | None = None
        self.outbox: queue.Queue[p4r.StreamMessageResponse | None] = queue.Queue(maxsize=4096)


class SwitchState:
    """The device behind the server: pipeline, engine lock, arbitration, packet I/O."""

    def __init__(self, device_id: int, cpu_port: int | None,
                 transmit: Callable[[list[Output]], None]) -> None:
        self.device_id = device_id
        self.cpu_port = cpu_port
        self.transmit = transmit
        self.lock = threading.RLock()  # one lock: packets and table operations are serialised
        self.pipeline: Pipeline | None = None
        self.saved: Pipeline | None = None
        self.clients: list[Client] = []
        self.clients_lock = threading.Lock()

    # -- arbitration ------------------------------------------------------------------------
    def primary(self) -> Client | None:
        with self.clients_lock:
            elected = [c for c in self.clients if c.election_id is not None]
        return max(elected, key=lambda c: c.election_id or 0, default=None)

    def primary_election_id(self) -> int | None:
        primary = self.primary()
        return None if primary is None else primary.election_id

    def announce(self) -> None:
        """Tell every client who is primary (OK to the primary, ALREADY_EXISTS to others)."""
        primary = self.primary()
        if primary is None:
            return
        high, low = divmod(primary.election_id or 0, 1 << 64)
        with self.clients_lock:
            clients = list(self.clients)
        for client in clients:
            if client.election_id is None:
                continue
            code = rpc_code.OK if client is primary else rpc_code.ALREADY_EXISTS
            message = "primary" if client is primary else "backup: another client is primary"
            update = p4r.MasterArbitrationUpdate(
                device_id=self.device_id, election_id=p4r.Uint128(high=high, low=low),
                status=rpc_status.Status(code=code, message=message))
            client.outbox.put(p4r.StreamMessageResponse(arbitration=update))

    def check_primary(self, election: p4r.Uint128) -> None:
        value = (election.high << 64) | election.low
        primary = self.primary_election_id()
        if primary is None or value != primary:
            raise RequestError(grpc.StatusCode.PERMISSION_DENIED,
                               f"election id {value} is not the primary's ({primary})")

    # -- packets ------------------------------------------------------------------------------
    def process(self, frame: bytes, ingress_port: int) -> None:
        """Run a frame from a port through the pipeline and send what comes out."""
        with self.lock:
            pipeline = self.pipeline
            if pipeline is None:
                return
            outputs = pipeline.engine.process(frame, ingress_port)
        self.dispatch(outputs, pipeline)

    def dispatch(self, outputs: list[Output], pipeline: Pipeline) -> None:
        to_ports = []
        for out in outputs:
            if self.cpu_port is not None and out.port == self.cpu_port:
                self.packet_in(out.frame, pipeline)
            else:
                to_ports.append(out)
        if to_ports:
            self.transmit(to_ports)

    def packet_in(self, frame: bytes, pipeline: Pipeline) -> None:
        header = pipeline.index.packet_in
        primary = self.primary()
        if primary is None:
            return
        if header is None:
            msg = p4r.PacketIn(payload=frame)
        else:
            metadata = [p4r.PacketMetadata(metadata_id=fid, value=encode_int(value, 0))
                        for fid, value in header.unpack(frame)]
            msg = p4r.PacketIn(payload=frame[header.size:], metadata=metadata)
        try:
            primary.outbox.put_nowait(p4r.StreamMessageResponse(packet=msg))
        except queue.Full:
            log.warning("PacketIn dropped: the controller is not reading its stream")

    def packet_out(self, msg: p4r.PacketOut) -> None:
        pipeline = self.pipeline
        if pipeline is None or self.cpu_port is None:
            return
        header = pipeline.index.packet_out
        frame = msg.payload
        if header is not None:
            widths = {fid: width for fid, _, width in header.fields}
            values = {}
            for m in msg.metadata:
                if m.metadata_id in widths:
                    values[m.metadata_id] = decode_int(m.value, widths[m.metadata_id],
                                                       f"packet_out metadata {m.metadata_id}")
            frame = header.pack(values) + frame
        self.process(frame, self.cpu_port)


class P4RuntimeServicer(p4r_grpc.P4RuntimeServicer):
    """The P4Runtime service over one `SwitchState`."""

    def __init__(self, state: SwitchState) -> None:
        self.state = state

    # -- helpers -----------------------------------------------------------------------------
    def _device(self, device_id: int) -> None:
        if device_id != self.state.device_id:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no device {device_id}")

    def _pipeline(self) -> Pipeline:
        if self.state.pipeline is None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                               "no forwarding pipeline: SetForwardingPipelineConfig first")
        return self.state.pipeline

    @staticmethod
    def _fail(context: grpc.ServicerContext, exc: RequestError) -> None:
        context.abort(exc.code, str(exc))

    # -- unary RPCs --------------------------------------------------------------------------
    def Capabilities(self, request: p4r.CapabilitiesRequest,
                     context: grpc.ServicerContext) -> p4r.CapabilitiesResponse:
        return p4r.CapabilitiesResponse(p4runtime_api_version=API_VERSION)

    def SetForwardingPipelineConfig(self, request: p4r.SetForwardingPipelineConfigRequest,
                                    context: grpc.ServicerContext
                                    ) -> p4r.SetForwardingPipelineConfigResponse:
        try:
            self._device(request.device_id)
            self.state.check_primary(request.election_id)
            self._set_pipeline(request)
        except RequestError as exc:
            self._fail(context, exc)
        return p4r.SetForwardingPipelineConfigResponse()

    def _load(self, config: p4r.ForwardingPipelineConfig) -> Pipeline:
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
        return Pipeline(config, index, engine)

    def _set_pipeline(self, request: p4r.SetForwardingPipelineConfigRequest) -> None:
        action = request.action
        state = self.state
        actions = p4r.SetForwardingPipelineConfigRequest
        if action == actions.VERIFY:
            self._load(request.config)
        elif action == actions.VERIFY_AND_SAVE:
            state.saved = self._load(request.config)
        elif action == actions.VERIFY_AND_COMMIT:
            pipeline = self._load(request.config)
            with state.lock:
                state.pipeline, state.saved = pipeline, None
        elif action == actions.COMMIT:
            if state.saved is None:
                raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                                   "COMMIT without a saved pipeline (VERIFY_AND_SAVE first)")
            with state.lock:
                state.pipeline, state.saved = state.saved, None
        elif action == actions.RECONCILE_AND_COMMIT:
            current = state.pipeline
            if current is None:
                pipeline = self._load(request.config)
                with state.lock:
                    state.pipeline = pipeline
            elif (current.config.p4info != request.config.p4info
                  or current.config.p4_device_config != request.config.p4_device_config):
                raise RequestError(grpc.StatusCode.UNIMPLEMENTED,
                                   "RECONCILE_AND_COMMIT of a different pipeline is not "
                                   "supported: use VERIFY_AND_COMMIT")
            else:
                current.config.cookie.CopyFrom(request.config.cookie)
        else:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"unsupported pipeline action {action}")

    def GetForwardingPipelineConfig(self, request: p4r.GetForwardingPipelineConfigRequest,
                                    context: grpc.ServicerContext
                                    ) -> p4r.GetForwardingPipelineConfigResponse:
        try:
            self._device(request.device_id)
            pipeline = self._pipeline()
        except RequestError as exc:
            self._fail(context, exc)
        kinds = p4r.GetForwardingPipelineConfigRequest
        config = p4r.ForwardingPipelineConfig(cookie=pipeline.config.cookie)
        if request.response_type in (kinds.ALL, kinds.P4INFO_AND_COOKIE):
            config.p4info.CopyFrom(pipeline.config.p4info)
        if request.response_type in (kinds.ALL, kinds.DEVICE_CONFIG_AND_COOKIE):
            config.p4_device_config = pipeline.config.p4_device_config
        return p4r.GetForwardingPipelineConfigResponse(config=config)

    def Write(self, request: p4r.WriteRequest,
              context: grpc.ServicerContext) -> p4r.WriteResponse:
        try:
            self._device(request.device_id)
            self.state.check_primary(request.election_id)
            pipeline = self._pipeline()
        except RequestError as exc:
            self._fail(context, exc)
        if request.atomicity not in (p4r.WriteRequest.CONTINUE_ON_ERROR,):
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          "only CONTINUE_ON_ERROR atomicity is supported")
        errors = []
        with self.state.lock:
            for update in request.updates:
                try:
                    WriteHandler(pipeline).apply(update)
                    errors.append(p4r.Error(canonical_code=rpc_code.OK))
                except (P4InfoError, EngineError) as exc:
                    errors.append(p4r.Error(canonical_code=CODES.get(exc.code, rpc_code.UNKNOWN),
                                            message=str(exc)))
        if any(e.canonical_code != rpc_code.OK for e in errors):
            details = []
            for error in errors:
                packed = any_pb2.Any()
                packed.Pack(error)
                details.append(packed)
            failed = [e for e in errors if e.canonical_code != rpc_code.OK]
            status = rpc_status.Status(code=rpc_code.UNKNOWN,
                                       message=f"{len(failed)} of {len(errors)} updates failed: "
                                       f"{failed[0].message}", details=details)
            context.set_trailing_metadata((("grpc-status-details-bin",
                                            status.SerializeToString()),))
            context.abort(grpc.StatusCode.UNKNOWN, status.message)
        return p4r.WriteResponse()

    def Read(self, request: p4r.ReadRequest,
             context: grpc.ServicerContext) -> Iterator[p4r.ReadResponse]:
        try:
            self._device(request.device_id)
            pipeline = self._pipeline()
            with self.state.lock:
                entities = [e for entity in request.entities
                            for e in ReadHandler(pipeline).read(entity)]
        except RequestError as exc:
            self._fail(context, exc)
        except (P4InfoError, EngineError) as exc:
            context.abort(_grpc_code(exc.code), str(exc))
        for start in range(0, len(entities), 1000):
            yield p4r.ReadResponse(entities=entities[start:start + 1000])

    # -- stream ------------------------------------------------------------------------------
    def StreamChannel(self, request_iterator: Iterator[p4r.StreamMessageRequest],
                      context: grpc.ServicerContext) -> Iterator[p4r.StreamMessageResponse]:
        state = self.state
        client = Client()
        with state.clients_lock:
            state.clients.append(client)

        def reader() -> None:
            try:
                for msg in request_iterator:
                    self._on_stream_message(client, msg)
            except grpc.RpcError:
                pass
            finally:
                client.outbox.put(None)

        thread = threading.Thread(target=reader, daemon=True, name="p4rt-stream")
        thread.start()
        try:
            while True:
                msg = client.outbox.get()
                if msg is None:
                    return
                yield msg
        finally:
            with state.clients_lock:
                state.clients.remove(client)
            state.announce()

    def _on_stream_message(self, client: Client, msg: p4r.StreamMessageRequest) -> None:
        kind = msg.WhichOneof("update")
        if kind == "arbitration":
            arb = msg.arbitration
            if arb.device_id != self.state.device_id:
                client.outbox.put(p4r.StreamMessageResponse(error=p4r.StreamError(
                    canonical_code=rpc_code.NOT_FOUND, message=f"no device {arb.device_id}")))
                return
            value = (arb.election_id.high << 64) | arb.election_id.low
            with self.state.clients_lock:
                taken = any(c is not client and c.election_id == value
                            for c in self.state.clients)
            if taken:
                client.outbox.put(p4r.StreamMessageResponse(error=p4r.StreamError(
                    canonical_code=rpc_code.INVALID_ARGUMENT,
                    message=f"election id {value} is used by another client")))
                return
            client.election_id = value
            self.state.announce()
        elif kind == "packet":
            if client is not self.state.primary():
                client.outbox.put(p4r.StreamMessageResponse(error=p4r.StreamError(
                    canonical_code=rpc_code.PERMISSION_DENIED,
                    message="PacketOut from a client that is not primary",
                    packet_out=p4r.PacketOutError(packet_out=msg.packet))))
                return
            try:
                self.state.packet_out(msg.packet)
            except P4InfoError as exc:
                client.outbox.put(p4r.StreamMessageResponse(error=p4r.StreamError(
                    canonical_code=rpc_code.INVALID_ARGUMENT, message=str(exc),
                    packet_out=p4r.PacketOutError(packet_out=msg.packet))))
        else:
            log.debug("stream message %s ignored", kind)


class WriteHandler:
    """Applies one p4.v1.Update to the engine."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.index = pipeline.index
        self.engine = pipeline.engine

    def apply(self, update: p4r.Update) -> None:
        entity = update.entity
        kind = entity.WhichOneof("entity")
        if kind == "table_entry":
            self._table_entry(update.type, entity.table_entry)
        elif kind == "counter_entry":
            self._require_modify(update.type, "counter entries")
            self._counter(entity.counter_entry)
        elif kind == "direct_counter_entry":
            self._require_modify(update.type, "direct counter entries")
            entry = entity.direct_counter_entry
            table = self.index.table(entry.table_entry.table_id)
            keys, priority = match_keys(table, entry.table_entry)
            self.engine.direct_counter_write(table.name, keys, priority,
                                             entry.data.packet_count, entry.data.byte_count)
        elif kind == "register_entry":
            self._require_modify(update.type, "register entries")
            self._register(entity.register_entry)
        else:
            raise P4InfoError("UNIMPLEMENTED", f"writing {kind} is not supported")

    @staticmethod
    def _require_modify(kind: int, what: str) -> None:
        if kind != p4r.Update.MODIFY:
            raise P4InfoError("INVALID_ARGUMENT", f"{what} can only be modified")

    def _table_entry(self, kind: int, entry: p4r.TableEntry) -> None:
        table = self.index.table(entry.table_id)
        if entry.is_default_action:
            if kind != p4r.Update.MODIFY:
                raise P4InfoError("INVALID_ARGUMENT", "a default entry can only be modified")
            if entry.match:
                raise P4InfoError("INVALID_ARGUMENT", "a default entry has no match fields")
            if not entry.HasField("action"):
                spec = self.engine.tables[table.name]
                self.engine.set_default(table.name, spec.default_action, spec.default_params)
                return
            name, params = self._action(table, entry.action)
            self.engine.set_default(table.name, name, params)
            return
        keys, priority = match_keys(table, entry)
        if kind == p4r.Update.DELETE:
            self.engine.delete_entry(table.name, keys, priority)
            return
        name, params = self._action(table, entry.action)
        if kind == p4r.Update.INSERT:
            self.engine.add_entry(table.name, keys, name, params, priority)
        elif kind == p4r.Update.MODIFY:
            self.engine.modify_entry(table.name, keys, name, params, priority)
        else:
            raise P4InfoError("INVALID_ARGUMENT", f"unknown update type {kind}")

    def _action(self, table: Any, action: p4r.TableAction) -> tuple[str, list[int]]:
        if action.WhichOneof("type") != "action":
            raise P4InfoError("UNIMPLEMENTED", "only direct actions are supported")
        call = action.action
        info = self.index.action(call.action_id)
        if call.action_id not in table.action_ids:
            raise P4InfoError("INVALID_ARGUMENT",
                              f"action {info.preamble.name} is not an action of {table.name}")
        given = {p.param_id: p.value for p in call.params}
        if set(given) != {p.id for p in info.params}:
            raise P4InfoError("INVALID_ARGUMENT",
                              f"action {info.preamble.name} takes params "
                              f"{[p.name for p in info.params]}")
        params = [decode_int(given[p.id], p.bitwidth, f"{info.preamble.name}.{p.name}")
                  for p in info.params]
        return info.preamble.name, params

    def _counter(self, entry: p4r.CounterEntry) -> None:
        info = self.index.counter(entry.counter_id)
        if not entry.HasField("index"):
            raise P4InfoError("INVALID_ARGUMENT", "writing a counter needs an index")
        self.engine.counter_write(info.preamble.name, entry.index.index,
                                  entry.data.packet_count, entry.data.byte_count)

    def _register(self, entry: p4r.RegisterEntry) -> None:
        info = self.index.register(entry.register_id)
        if not entry.HasField("index"):
            raise P4InfoError("INVALID_ARGUMENT", "writing a register needs an index")
        if entry.data.WhichOneof("data") != "bitstring":
            raise P4InfoError("INVALID_ARGUMENT", "register data must be a bitstring")
        width = info.type_spec.bitstring.bit.bitwidth
        value = decode_int(entry.data.bitstring, width, info.preamble.name)
        self.engine.register_write(info.preamble.name, entry.index.index, value)


def match_keys(table: Any, entry: p4r.TableEntry) -> tuple[list[MatchKey], int]:
    """The engine's keys of a P4Runtime entry: omitted fields become wildcards."""
    given = {m.field_id: m for m in entry.match}
    known = {f.id for f in table.match_fields}
    if set(given) - known:
        raise P4InfoError("INVALID_ARGUMENT",
                          f"{table.name}: unknown match field ids {sorted(set(given) - known)}")
    keys: list[MatchKey] = []
    needs_priority = False
    for f in table.match_fields:
        kind = p4i.MatchField.MatchType.Name(f.match_type).lower()
        m = given.get(f.id)
        what = f"{table.name}.{f.name}"
        if kind in ("ternary", "range", "optional"):
            needs_priority = True
        if m is None:
            if kind == "exact":
                raise P4InfoError("INVALID_ARGUMENT", f"{what}: exact field missing")
            keys.append(_wildcard(kind, f.bitwidth))
            continue
        if m.WhichOneof("field_match_type") != kind:
            raise P4InfoError("INVALID_ARGUMENT", f"{what}: expected a {kind} match")
        if kind == "exact":
            keys.append(MatchKey("exact", decode_int(m.exact.value, f.bitwidth, what)))
        elif kind == "lpm":
            if not 0 < m.lpm.prefix_len <= f.bitwidth:
                raise P4InfoError("INVALID_ARGUMENT", f"{what}: bad prefix length")
            keys.append(MatchKey("lpm", decode_int(m.lpm.value, f.bitwidth, what),
                                 m.lpm.prefix_len))
        elif kind == "ternary":
            keys.append(MatchKey("ternary", decode_int(m.ternary.value, f.bitwidth, what),
                                 decode_int(m.ternary.mask, f.bitwidth, what)))
        elif kind == "range":
            low = decode_int(m.range.low, f.bitwidth, what)
            high = decode_int(m.range.high, f.bitwidth, what)
            if low > high:
                raise P4InfoError("INVALID_ARGUMENT", f"{what}: range low > high")
            keys.append(MatchKey("range", low, high))
        elif kind == "optional":
            keys.append(MatchKey("optional", decode_int(m.optional.value, f.bitwidth, what), 1))
        else:
            raise P4InfoError("UNIMPLEMENTED", f"{what}: match kind {kind}")
    if needs_priority and entry.priority <= 0:
        raise P4InfoError("INVALID_ARGUMENT", f"{table.name}: entries need a priority > 0")
    if not needs_priority and entry.priority:
        raise P4InfoError("INVALID_ARGUMENT", f"{table.name}: entries take no priority")
    return keys, entry.priority


def _wildcard(kind: str, bitwidth: int) -> MatchKey:
    if kind == "lpm":
        return MatchKey("lpm", 0, 0)
    if kind == "ternary":
        return MatchKey("ternary", 0, 0)
    if kind == "range":
        return MatchKey("range", 0, (1 << bitwidth) - 1)
    return MatchKey("optional", 0, None)


def _field_match(f: Any, key: MatchKey) -> p4r.FieldMatch | None:
    """The P4Runtime form of an engine key; None for a wildcard (omitted on read)."""
    kind, width = key.kind, f.bitwidth
    if kind == "exact":
        return p4r.FieldMatch(field_id=f.id, exact=p4r.FieldMatch.Exact(
            value=encode_int(key.value, width)))
    if kind == "lpm":
        if not key.arg:
            return None
        return p4r.FieldMatch(field_id=f.id, lpm=p4r.FieldMatch.LPM(
            value=encode_int(key.value, width), prefix_len=key.arg))
    if kind == "ternary":
        if not key.arg:
            return None
        return p4r.FieldMatch(field_id=f.id, ternary=p4r.FieldMatch.Ternary(
            value=encode_int(key.value, width), mask=encode_int(key.arg or 0, width)))
    if kind == "range":
        if key.value == 0 and key.arg == (1 << width) - 1:
            return None
        return p4r.FieldMatch(field_id=f.id, range=p4r.FieldMatch.Range(
            low=encode_int(key.value, width), high=encode_int(key.arg or 0, width)))
    if key.arg is None:
        return None
    return p4r.FieldMatch(field_id=f.id, optional=p4r.FieldMatch.Optional(
        value=encode_int(key.value, width)))


class ReadHandler:
    """Answers the entities of a ReadRequest, wildcards expanded."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.index = pipeline.index
        self.engine = pipeline.engine

    def read(self, entity: p4r.Entity) -> list[p4r.Entity]:
        kind = entity.WhichOneof("entity")
        if kind == "table_entry":
            return self._tables(entity.table_entry)
        if kind == "counter_entry":
            return self._counters(entity.counter_entry)
        if kind == "direct_counter_entry":
            return self._direct_counters(entity.direct_counter_entry)
        if kind == "register_entry":
            return self._registers(entity.register_entry)
        raise P4InfoError("UNIMPLEMENTED", f"reading {kind} is not supported")

    def _action_msg(self, name: str, params: list[int]) -> p4r.TableAction:
        info = self.index.action_by_name(name)
        return p4r.TableAction(action=p4r.Action(action_id=info.preamble.id, params=[
            p4r.Action.Param(param_id=p.id, value=encode_int(v, p.bitwidth))
            for p, v in zip(info.params, params, strict=True)]))

    def _tables(self, query: p4r.TableEntry) -> list[p4r.Entity]:
        tables = ([self.index.table(query.table_id)] if query.table_id
                  else list(self.index.tables.values()))
        out: list[p4r.Entity] = []
        for table in tables:
            if query.is_default_action:
                name, params = self.engine.get_default(table.name)
                out.append(p4r.Entity(table_entry=p4r.TableEntry(
                    table_id=table.id, is_default_action=True,
                    action=self._action_msg(name, params))))
                continue
            want_keys = None
            if query.match:
                want_keys = match_keys(table, query)
            for entry in self.engine.entries(table.name):
                if want_keys is not None and (entry.keys, entry.priority) != want_keys:
                    continue
                msg = p4r.TableEntry(table_id=table.id, priority=entry.priority,
                                     action=self._action_msg(entry.action, entry.params))
                for f, key in zip(table.match_fields, entry.keys, strict=True):
                    fm = _field_match(f, key)
                    if fm is not None:
                        msg.match.append(fm)
                if query.HasField("counter_data") and table.direct_counter_id:
                    msg.counter_data.CopyFrom(p4r.CounterData(packet_count=entry.packets,
                                                              byte_count=entry.bytes))
                out.append(p4r.Entity(table_entry=msg))
        return out

    def _counters(self, query: p4r.CounterEntry) -> list[p4r.Entity]:
        infos = ([self.index.counter(query.counter_id)] if query.counter_id
                 else list(self.index.counters.values()))
        out: list[p4r.Entity] = []
        for info in infos:
            indices = ([query.index.index] if query.HasField("index") else range(info.size))
            for i in indices:
                packets, nbytes = self.engine.counter_read(info.preamble.name, i)
                out.append(p4r.Entity(counter_entry=p4r.CounterEntry(
                    counter_id=info.preamble.id, index=p4r.Index(index=i),
                    data=p4r.CounterData(packet_count=packets, byte_count=nbytes))))
        return out

    def _direct_counters(self, query: p4r.DirectCounterEntry) -> list[p4r.Entity]:
        tables = ([self.index.table(query.table_entry.table_id)] if query.table_entry.table_id
                  else [t for t in self.index.tables.values() if t.direct_counter_id])
        out: list[p4r.Entity] = []
        for table in tables:
            if not table.direct_counter_id:
                raise P4InfoError("INVALID_ARGUMENT", f"{table.name} has no direct counter")
            sub = p4r.TableEntry()
            sub.CopyFrom(query.table_entry)
            sub.table_id = table.id
            sub.counter_data.CopyFrom(p4r.CounterData())
            for entity in self._tables(sub):
                te = entity.table_entry
                data = p4r.CounterData()
                data.CopyFrom(te.counter_data)
                te.ClearField("counter_data")
                te.ClearField("action")
                out.append(p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
                    table_entry=te, data=data)))
        return out

    def _registers(self, query: p4r.RegisterEntry) -> list[p4r.Entity]:
        infos = ([self.index.register(query.register_id)] if query.register_id
                 else list(self.index.registers.values()))
        out: list[p4r.Entity] = []
        for info in infos:
            width = info.type_spec.bitstring.bit.bitwidth
            indices = ([query.index.index] if query.HasField("index") else range(info.size))
            for i in indices:
                value = self.engine.register_read(info.preamble.name, i)
                out.append(p4r.Entity(register_entry=p4r.RegisterEntry(
                    register_id=info.preamble.id, index=p4r.Index(index=i),
                    data=p4d.P4Data(bitstring=encode_int(value, width)))))
        return out


def serve(state: SwitchState, address: str, workers: int = 8) -> grpc.Server:
    """Start the P4Runtime gRPC server on `address`; returns the running server."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                    thread_name_prefix="p4rt"))
    p4r_grpc.add_P4RuntimeServicer_to_server(P4RuntimeServicer(state), server)
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server
