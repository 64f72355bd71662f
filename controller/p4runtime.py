"""The project's one P4Runtime client: a session with one switch, on finsy.

finsy (PyPI) gives typed, P4Info-aware entities (`P4TableEntry`, `P4CounterEntry`,
`P4RegisterEntry`, `P4PacketOut`, ...) and the p4runtime protos built for
current protobuf; this module adds what a session needs around them: primary
arbitration with an election id, pipeline push, batched writes with per-update
errors, reads, and PacketIn/PacketOut on the stream channel.

`P4RuntimeSession` is asyncio (the controller daemon runs it);
`BlockingP4Runtime` runs one on a private event loop for tests and CLIs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import finsy as fy
from finsy.grpcutil import GRPCCredentialsTLS, GRPCStatusCode
from finsy.p4client import P4Client, P4ClientError
from finsy.p4entity import decode_entity, decode_stream, encode_entities, encode_updates
from finsy.proto import U128, p4r, rpc_code

from clikit.tls import TlsFiles
from p4src.pipeline import BMV2_JSON, P4INFO

log = logging.getLogger("mp.p4runtime")
T = TypeVar("T")


class NotPrimary(RuntimeError):
    """Another client holds a higher election id for this device."""


class P4RuntimeSession:
    """One P4Runtime session to `address` as controller `election_id` of `device_id`."""

    def __init__(self, address: str, device_id: int = 0, election_id: int = 1,
                 p4info: Path = P4INFO, p4blob: Path = BMV2_JSON,
                 take_over: bool = False, tls: TlsFiles | None = None) -> None:
        self.address = address
        self.device_id = device_id
        self.election_id = election_id
        self.take_over = take_over
        self.schema = fy.P4Schema(p4info, p4blob)
        self.p4blob = p4blob
        credentials = None
        if tls is not None and tls.enabled:
            credentials = GRPCCredentialsTLS(cacert=tls.ca, cert=tls.cert, private_key=tls.key,
                                             target_name_override=tls.server_name)
        self.client = P4Client(address, credentials, wait_for_ready=False)
        self.packet_ins: asyncio.Queue[fy.P4PacketIn] = asyncio.Queue()
        self.is_primary = False
        self.closed = asyncio.Event()  # set when the stream channel ends (switch gone)
        self._arbitration: asyncio.Queue[p4r.MasterArbitrationUpdate] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def open(self, timeout: float = 10.0) -> None:
        """Connect and run primary arbitration; NotPrimary if another client wins.

        A server that follows the spec (§5) has no primary after the primary left
        until a client arbitrates with an election id at least the highest it has
        seen, which its NOT_FOUND notice carries. With `take_over`, the session then
        arbitrates again with that id + 1 (BMv2 instead promotes the next live client
        itself, so it never answers NOT_FOUND)."""
        await self.client.open(schema=self.schema)
        await self._arbitrate()
        self._reader = asyncio.create_task(self._read_stream())
        update = await asyncio.wait_for(self._arbitration.get(), timeout)
        past = U128.decode(update.election_id) if update.HasField("election_id") else None
        if (self.take_over and update.status.code == rpc_code.NOT_FOUND
                and past is not None and past >= self.election_id):
            log.info("%s: no primary (highest election id %d); taking over as %d",
                     self.address, past, past + 1)
            self.election_id = past + 1
            await self._arbitrate()
            update = await asyncio.wait_for(self._arbitration.get(), timeout)
        self.is_primary = update.status.code == rpc_code.OK
        if not self.is_primary:
            raise NotPrimary(f"{self.address} device {self.device_id}: election id "
                             f"{self.election_id} is not primary ({update.status.message})")

    async def _arbitrate(self) -> None:
        await self.client.send(p4r.StreamMessageRequest(arbitration=p4r.MasterArbitrationUpdate(
            device_id=self.device_id, election_id=U128.encode(self.election_id))))

    async def _read_stream(self) -> None:
        try:
            while True:
                msg = await self.client.receive()
                kind = msg.WhichOneof("update")
                if kind == "arbitration":
                    if self.is_primary and msg.arbitration.status.code != rpc_code.OK:
                        # a client with a higher election id took over: we are a backup now
                        log.warning("%s: no longer primary (%s)", self.address,
                                    msg.arbitration.status.message)
                        self.is_primary = False
                        return
                    await self._arbitration.put(msg.arbitration)
                elif kind == "packet":
                    await self.packet_ins.put(decode_stream(msg, self.schema))
                else:
                    log.debug("stream message %s ignored", kind)
        except (P4ClientError, RuntimeError) as exc:
            log.info("stream channel to %s closed: %s", self.address, exc)
        finally:
            self.closed.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.client.close()

    def _election(self) -> p4r.Uint128:
        return U128.encode(self.election_id)

    async def set_pipeline(self, action: p4r.SetForwardingPipelineConfigRequest.Action.ValueType
                           = p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
                           cookie: int = 0) -> None:
        """Push the P4Info and the BMv2 JSON to the switch (which clears its state)."""
        config = p4r.ForwardingPipelineConfig(
            p4info=self.schema.p4info, p4_device_config=self.p4blob.read_bytes(),
            cookie=p4r.ForwardingPipelineConfig.Cookie(cookie=cookie))
        await self.client.request(p4r.SetForwardingPipelineConfigRequest(
            device_id=self.device_id, election_id=self._election(), action=action,
            config=config))

    async def pipeline_cookie(self) -> int | None:
        """The cookie of the switch's pipeline, or None if it has none."""
        try:
            reply = await self.client.request(p4r.GetForwardingPipelineConfigRequest(
                device_id=self.device_id,
                response_type=p4r.GetForwardingPipelineConfigRequest.COOKIE_ONLY))
        except P4ClientError as exc:
            if exc.code == GRPCStatusCode.FAILED_PRECONDITION:  # no pipeline yet
                return None
            raise
        return reply.config.cookie.cookie if reply.config.HasField("cookie") else None

    async def write_raw(self, updates: list[p4r.Update]) -> None:
        """Write already encoded updates (for reconciliation)."""
        await self.client.request(p4r.WriteRequest(
            device_id=self.device_id, election_id=self._election(), updates=updates,
            atomicity=p4r.WriteRequest.CONTINUE_ON_ERROR))

    async def read_raw(self, entities: list[p4r.Entity]) -> list[p4r.Entity]:
        """Read entities as protos (canonical bytes, for comparison)."""
        found: list[p4r.Entity] = []
        async for reply in self.client.request_iter(
                p4r.ReadRequest(device_id=self.device_id, entities=entities)):
            found.extend(reply.entities)
        return found

    def encode(self, updates: Iterable[Any]) -> list[p4r.Update]:
        """finsy's typed updates (`+entry`, `-entry`, `~entry`) as P4Runtime Update protos."""
        return [u for u in encode_updates(list(updates), self.schema)
                if isinstance(u, p4r.Update)]

    async def write(self, updates: Iterable[Any],
                    atomicity: p4r.WriteRequest.Atomicity.ValueType
                    = p4r.WriteRequest.CONTINUE_ON_ERROR) -> None:
        """Write a batch of updates (`+entry`, `-entry`, `~entry`); P4ClientError on failure,
        whose `details` map update index -> error."""
        await self.client.request(p4r.WriteRequest(
            device_id=self.device_id, election_id=self._election(),
            updates=self.encode(updates), atomicity=atomicity))

    async def read(self, entities: Iterable[Any]) -> list[Any]:
        """Read entities (wildcards allowed); decoded into finsy's typed entities."""
        request = p4r.ReadRequest(device_id=self.device_id,
                                  entities=encode_entities(list(entities), self.schema))
        found: list[Any] = []
        async for reply in self.client.request_iter(request):
            found.extend(decode_entity(e, self.schema) for e in reply.entities)
        return found

    async def packet_out(self, payload: bytes, **metadata: Any) -> None:
        await self.client.send(fy.P4PacketOut(payload, **metadata).encode_update(self.schema))


class BlockingP4Runtime:
    """A `P4RuntimeSession` driven from synchronous code, on its own event loop thread."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"p4runtime-{address}")
        self._thread.start()
        self.session: P4RuntimeSession = self._call(self._make(address, kwargs))

    @staticmethod
    async def _make(address: str, kwargs: dict[str, Any]) -> P4RuntimeSession:
        return P4RuntimeSession(address, **kwargs)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def open(self) -> BlockingP4Runtime:
        self._call(self.session.open())
        return self

    def set_pipeline(self) -> None:
        self._call(self.session.set_pipeline())

    def write(self, updates: Iterable[Any]) -> None:
        self._call(self.session.write(list(updates)))

    def read(self, entities: Iterable[Any]) -> list[Any]:
        return self._call(self.session.read(list(entities)))

    def packet_out(self, payload: bytes, **metadata: Any) -> None:
        self._call(self.session.packet_out(payload, **metadata))

    def packet_in(self, timeout: float = 2.0) -> Any:
        """The next PacketIn, or TimeoutError."""
        return self._call(asyncio.wait_for(self.session.packet_ins.get(), timeout),
                          timeout + 1)

    def close(self) -> None:
        try:
            self._call(self.session.close(), 10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> BlockingP4Runtime:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
