"""The northbound gRPC service (controller/proto/northbound.proto) over ControllerService.

Every call must carry `authorization: Bearer <token>`; the token names a client
of the config. Errors map to gRPC status codes with a one-line message. A call that
carries `mp-session: <id>` belongs to that open `Session` stream (controller/sessions.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from finsy.p4client import P4ClientError

from controller.config import ClientConf
from controller.intent import FlowIntent, IntentError, QuicMappingIntent, StreamIntent
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from controller.service import ControllerService, RankRequest
from controller.sessions import SESSION_METADATA, ProxySession
from controller.write_batcher import SwitchWriteError
from p4src.pipeline import FASTPATH_PORT

T = TypeVar("T")
#: InstallQuicMappings takes at most this many (a WriteRequest's worth with their CIDs)
MAX_MAPPINGS_PER_CALL = 500
log = logging.getLogger("mp-controller")


def flow_message(flow: FlowIntent, fastpath_addr: str) -> nb.Flow:
    return nb.Flow(flow_id=flow.flow_id, client_addr=flow.client_addr,
                   client_port=flow.client_port, target_addr=flow.target_addr,
                   target_port=flow.target_port, fastpath_addr=fastpath_addr,
                   fastpath_port=FASTPATH_PORT, proxy_port=flow.proxy_port, client=flow.client)


def stream_message(stream: StreamIntent, clamped: bool = False) -> nb.Stream:
    return nb.Stream(key=nb.StreamKey(src_addr=stream.src_addr, dst_addr=stream.dst_addr,
                                      src_port=stream.src_port, dst_port=stream.dst_port,
                                      dscp=stream.dscp),
                     rank=stream.rank, clamped=clamped, client=stream.client)


class NorthboundServicer(nb_grpc.ControllerServicer):
    def __init__(self, service: ControllerService) -> None:
        self.service = service
        self._ending: set[asyncio.Task[Any]] = set()

    async def _client(self, context: grpc.aio.ServicerContext) -> ClientConf:
        token = dict(context.invocation_metadata()).get("authorization", "")
        client = self.service.config.client_by_token(token.removeprefix("Bearer ").strip())
        if client is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or unknown token (metadata 'authorization: Bearer T')")
        return client  # type: ignore[return-value]

    def _session(self, context: grpc.aio.ServicerContext,
                 client: ClientConf) -> ProxySession | None:
        """The open session the call names, if any (an IntentError for an unknown one)."""
        named = dict(context.invocation_metadata()).get(SESSION_METADATA)
        return self.service.sessions.get(named, client)

    async def _call(self, context: grpc.aio.ServicerContext,
                    body: Callable[[ClientConf], Awaitable[T]]) -> T:
        client = await self._client(context)
        try:
            return await body(client)  # type: ignore[arg-type]
        except IntentError as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
        except (SwitchWriteError, P4ClientError) as exc:
            # the intent is stored (the switch gets it again on its next sync); say so
            await context.abort(grpc.StatusCode.INTERNAL, "stored, but the switch refused "
                                f"the write: {_one_line(exc)}")
        raise AssertionError("unreachable")

    async def OpenFlow(self, request: nb.OpenFlowRequest, context: Any) -> nb.Flow:
        async def body(client: ClientConf) -> nb.Flow:
            flow = await self.service.open_flow(client, request.client_addr,
                                                request.client_port, request.target_addr,
                                                request.target_port,
                                                self._session(context, client))
            return flow_message(flow, self.service.config.fastpath.address)
        return await self._call(context, body)

    async def CloseFlow(self, request: nb.FlowRef, context: Any) -> nb.Empty:
        async def body(client: ClientConf) -> nb.Empty:
            await self.service.close_flow(client, request.flow_id)
            return nb.Empty()
        return await self._call(context, body)

    async def ListFlows(self, request: nb.Empty, context: Any) -> nb.FlowList:
        async def body(client: ClientConf) -> nb.FlowList:
            addr = self.service.config.fastpath.address
            return nb.FlowList(flows=[flow_message(f, addr)
                                      for f in self.service.list_flows(client)])
        return await self._call(context, body)

    async def RegisterStream(self, request: nb.Stream, context: Any) -> nb.Stream:
        async def body(client: ClientConf) -> nb.Stream:
            which = request.WhichOneof("urgency")
            rank_request = RankRequest(**{which: getattr(request, which)} if which else {})
            k = request.key
            stream, clamped = await self.service.register_stream(
                client, k.src_addr, k.dst_addr, k.src_port, k.dst_port, k.dscp, rank_request,
                self._session(context, client))
            return stream_message(stream, clamped)
        return await self._call(context, body)

    async def RemoveStream(self, request: nb.StreamKey, context: Any) -> nb.Empty:
        async def body(client: ClientConf) -> nb.Empty:
            await self.service.remove_stream(client, request.src_addr, request.dst_addr,
                                             request.src_port, request.dst_port, request.dscp)
            return nb.Empty()
        return await self._call(context, body)

    async def ListStreams(self, request: nb.Empty, context: Any) -> nb.StreamList:
        async def body(client: ClientConf) -> nb.StreamList:
            return nb.StreamList(streams=[stream_message(s)
                                          for s in self.service.list_streams(client)])
        return await self._call(context, body)

    async def InstallQuicMapping(self, request: nb.QuicMapping, context: Any) -> nb.QuicMapping:
        async def body(client: ClientConf) -> nb.QuicMapping:
            mapping = await self.service.install_quic_mapping(client, quic_mapping_intent(request),
                                                              self._session(context, client))
            return quic_mapping_message(mapping)
        return await self._call(context, body)

    async def InstallQuicMappings(self, request: nb.QuicMappingList,
                                  context: Any) -> nb.QuicMappingResults:
        async def body(client: ClientConf) -> nb.QuicMappingResults:
            if len(request.mappings) > MAX_MAPPINGS_PER_CALL:
                raise IntentError("INVALID_ARGUMENT",
                                  f"{len(request.mappings)} mappings in one call; at most "
                                  f"{MAX_MAPPINGS_PER_CALL}")
            session = self._session(context, client)
            # concurrently: their switch writes share WriteRequests (write_batcher.py)
            done = await asyncio.gather(*(
                self.service.install_quic_mapping(client, quic_mapping_intent(m), session)
                for m in request.mappings), return_exceptions=True)
            results = []
            for outcome in done:
                if isinstance(outcome, IntentError):
                    results.append(nb.QuicMappingResult(error_code=outcome.code,
                                                        error=str(outcome)))
                elif isinstance(outcome, BaseException):
                    results.append(nb.QuicMappingResult(error_code="INTERNAL",
                                                        error=_one_line(outcome)))
                else:
                    results.append(nb.QuicMappingResult(mapping=quic_mapping_message(outcome)))
            return nb.QuicMappingResults(results=results)
        return await self._call(context, body)

    async def RemoveQuicMapping(self, request: nb.QuicMapping, context: Any) -> nb.Empty:
        async def body(client: ClientConf) -> nb.Empty:
            await self.service.remove_quic_mapping(client, quic_mapping_intent(request).key)
            return nb.Empty()
        return await self._call(context, body)

    async def ListQuicMappings(self, request: nb.Empty, context: Any) -> nb.QuicMappingList:
        async def body(client: ClientConf) -> nb.QuicMappingList:
            return nb.QuicMappingList(mappings=[
                quic_mapping_message(m) for m in self.service.list_quic_mappings(client)])
        return await self._call(context, body)

    async def Session(self, request: nb.Empty,
                      context: Any) -> AsyncIterator[nb.SessionInfo]:
        """Open a session, name it, and hold it until the caller goes away; then remove
        what the session made that is still installed (see controller/sessions.py)."""
        client = await self._client(context)
        named = dict(context.invocation_metadata()).get(SESSION_METADATA)
        session = self.service.sessions.resume(named, client)
        if session is not None:
            log.info("session %s resumed by %s (%s)", session.session_id, client.name,
                     context.peer())
        else:
            session = self.service.sessions.open(client)
            log.info("session %s opened by %s (%s)%s", session.session_id, client.name,
                     context.peer(), f"; {named} could not be resumed" if named else "")
        try:
            yield session_message(session)
            await asyncio.Event().wait()  # the stream stays open until the caller leaves
        finally:
            # this task is being cancelled: the grace period runs in a task of its own
            session.attached = False
            session.ending = asyncio.get_running_loop().create_task(self._end_later(session))
            self._ending.add(session.ending)
            session.ending.add_done_callback(self._ending.discard)

    async def _end_later(self, session: ProxySession) -> None:
        """End the session unless its proxy resumes it within the grace period."""
        await asyncio.sleep(self.service.config.session_grace_s)
        if not session.attached:
            await self._end(session)

    async def _end(self, session: ProxySession) -> None:
        held = {kind: session.count(kind) for kind in session.held}
        removed = await self.service.end_session(session.session_id)
        if self.service.shutting_down:
            log.info("session %s (%s) left open by the controller's stop: its %s stay",
                     session.session_id, session.client.name, _counts(held))
        else:
            log.info("session %s (%s) ended: removed %s", session.session_id,
                     session.client.name, _counts(removed))

    async def ListSessions(self, request: nb.Empty, context: Any) -> nb.SessionList:
        async def body(client: ClientConf) -> nb.SessionList:
            return nb.SessionList(sessions=[
                session_message(s) for s in self.service.sessions.visible_to(client)])
        return await self._call(context, body)

    async def SetSchedMode(self, request: nb.SchedMode, context: Any) -> nb.Empty:
        async def body(client: ClientConf) -> nb.Empty:
            await self.service.set_sched_mode(
                client, request.mode,
                request.burst_pct if request.HasField("burst_pct") else None,
                request.queue_depth if request.HasField("queue_depth") else None)
            return nb.Empty()
        return await self._call(context, body)

    async def GetStats(self, request: nb.Empty, context: Any) -> nb.Stats:
        async def body(client: ClientConf) -> nb.Stats:
            rows = await self.service.stats(client)
            return nb.Stats(switches=[nb.SwitchStats(
                switch=r["switch"], connected=r["connected"], sched_mode=r["sched_mode"],
                burst_pct=r["burst_pct"], queue_depth=r["queue_depth"],
                counters=[nb.CounterValue(name=n, index=i, label=lab, packets=p, bytes=b)
                          for n, i, lab, p, b in r["counters"]],
                sppifo_bounds=r["sppifo_bounds"], note=r["note"],
                last_restore_seconds=r["last_restore_s"], write_requests=r["write_requests"],
                write_updates=r["write_updates"]) for r in rows])
        return await self._call(context, body)

    async def DumpTable(self, request: nb.TableRef, context: Any) -> nb.TableDump:
        async def body(client: ClientConf) -> nb.TableDump:
            lines = await self.service.dump_table(client, request.name)
            return nb.TableDump(entries=[nb.TableEntryText(text=t) for t in lines])
        return await self._call(context, body)


async def serve(service: ControllerService, address: str,
                credentials: grpc.ServerCredentials | None = None) -> grpc.aio.Server:
    """Serve the northbound API on `address`: TLS with `credentials`, else plaintext."""
    server = grpc.aio.server()
    nb_grpc.add_ControllerServicer_to_server(NorthboundServicer(service), server)
    port = (server.add_secure_port(address, credentials) if credentials is not None
            else server.add_insecure_port(address))
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server


def session_message(session: ProxySession) -> nb.SessionInfo:
    return nb.SessionInfo(session_id=session.session_id, client=session.client.name,
                          flows=session.count("flow"), streams=session.count("stream"),
                          quic_mappings=session.count("quic_mapping"),
                          opened_seconds_ago=time.monotonic() - session.opened)


def _one_line(exc: BaseException) -> str:
    """An exception's first line, at most 300 characters, for a status message."""
    return (str(exc).splitlines() or [""])[0][:300]


def _counts(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}{'s' if n != 1 else ''}"
                     for kind, n in by_kind.items()) or "nothing"


def quic_mapping_intent(m: nb.QuicMapping) -> QuicMappingIntent:
    """The intent of a QuicMapping message (its `client` is set by the service)."""
    return QuicMappingIntent(
        client=m.client, direction=m.direction, src_addr=m.src_addr, src_port=m.src_port,
        dst_addr=m.dst_addr, dst_port=m.dst_port, dcid=bytes(m.dcid),
        out_src_addr=m.out_src_addr, out_src_port=m.out_src_port,
        out_dst_addr=m.out_dst_addr, out_dst_port=m.out_dst_port,
        new_dcid=bytes(m.new_dcid), rank=m.rank, tunnel=m.tunnel)


def quic_mapping_message(m: QuicMappingIntent) -> nb.QuicMapping:
    return nb.QuicMapping(**m.__dict__)
