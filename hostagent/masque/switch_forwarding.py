"""Forwarded mode in the switch: a `ForwardingTable` that asks the controller to install
each forwarding rule as a P4 mapping (quic_forward, quic_dcids), so that the switch swaps
connection IDs and addresses at line rate and the proxy host sees none of those packets.

The proxy keeps its own `SoftwareForwarder` in front of this table: whatever the switch
does not forward (a rule it declined, a rule not yet installed, a CID that is not
VCID_BYTES long, an IPv6 address) reaches the proxy host and is forwarded there, so a
refusal here costs CPU, never correctness.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any, Protocol

from hostagent.masque.forwarding import ForwardingRule
from p4src.pipeline import VCID_BYTES

log = logging.getLogger("mp-proxy")


class NorthboundCaller(Protocol):
    """The controller client the proxy already has (ControllerFastPath)."""

    def stub(self) -> Any: ...
    def call_options(self) -> dict[str, Any]: ...


def switch_can_apply(rule: ForwardingRule) -> str | None:
    """Why the switch cannot apply `rule` (one line), or None when it can."""
    if len(rule.dcid) != VCID_BYTES or len(rule.new_dcid) != VCID_BYTES:
        return (f"CIDs of {len(rule.dcid)} and {len(rule.new_dcid)} bytes (the switch "
                f"handles {VCID_BYTES})")
    for addr, _port in (rule.match.src, rule.match.dst, rule.out.src, rule.out.dst):
        try:
            ipaddress.IPv4Address(addr)
        except ValueError:
            return f"{addr} is not IPv4"
    return None


def _why(exc: Exception) -> str:
    """A gRPC error's details, or the exception's text."""
    details = getattr(exc, "details", None)
    return str(details()) if callable(details) else str(exc)


class MappingRefused(Exception):
    """The controller refused one mapping of a batch (its status name and reason)."""


class _InstallBatches:
    """Sends installs that queue while a call is in flight in one InstallQuicMappings call
    (the first goes at once); against a controller without that call, one at a time."""

    def __init__(self, northbound: NorthboundCaller, stats: dict[str, int],
                 largest: int = 500) -> None:  # controller.northbound.MAX_MAPPINGS_PER_CALL
        self.northbound = northbound
        self.largest = largest
        self.stats = stats  # counts its northbound calls in stats["install_calls"]
        self._batched = True
        self._queue: list[tuple[Any, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def install(self, message: Any) -> None:
        """Install one mapping; an exception if the controller refused it or failed."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append((message, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:self.largest], self._queue[self.largest:]
                outcomes = await self._send([message for message, _ in batch])
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue
                    if outcome is None:
                        done.set_result(None)
                    else:
                        done.set_exception(outcome)
        finally:
            self._flusher = None

    async def _send(self, messages: list[Any]) -> list[Exception | None]:
        import grpc  # noqa: PLC0415

        from controller.proto import northbound_pb2 as nb  # noqa: PLC0415
        stub, options = self.northbound.stub(), self.northbound.call_options()
        if self._batched:
            try:
                reply = await stub.InstallQuicMappings(
                    nb.QuicMappingList(mappings=messages), **options)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self._batched = False  # an older controller: one call per mapping
                    log.info("forwarded mode: the controller has no InstallQuicMappings; "
                             "installing one mapping per call")
                else:
                    failed: Exception | None = exc
            except Exception as exc:  # noqa: BLE001 - each install reports it
                failed = exc
            else:
                failed = None
            if self._batched:
                self.stats["install_calls"] += 1
                if failed is not None:
                    return [failed] * len(messages)
                return [MappingRefused(f"{r.error_code}: {r.error}") if r.error_code else None
                        for r in reply.results]
        outcomes: list[Exception | None] = []
        for message in messages:
            self.stats["install_calls"] += 1
            try:
                await stub.InstallQuicMapping(message, **options)
            except Exception as exc:  # noqa: BLE001
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes


class ControllerForwardingTable:
    """Installs and removes forwarded-mode rules in the switch through the controller.

    Calls for one rule are serialised (the proxy may remove a rule right after installing
    it), and removing a rule never installed is a no-op. Installs that come while one is
    on its way to the controller go together in the next call. When the controller ended
    the proxy's session (an outage longer than its grace period) and so removed the
    rules, they are installed again in the new one. `stats` counts what happened.
    """

    def __init__(self, northbound: NorthboundCaller) -> None:
        self.northbound = northbound
        #: what happened, how long installs took (ms, from the call to the answer: the
        #: controller round trip a mapping waits for before the proxy acknowledges it),
        #: and in how many northbound calls they went
        self.stats = {"installed": 0, "removed": 0, "declined": 0, "failed": 0,
                      "install_ms_total": 0, "install_ms_max": 0, "install_calls": 0,
                      "reinstalled": 0}
        self._batches = _InstallBatches(northbound, self.stats)
        listen = getattr(northbound, "on_new_session", None)
        if listen is not None:
            listen.append(self.reinstall)
        self._installed: dict[tuple[object, ...], ForwardingRule] = {}
        self._locks: dict[tuple[object, ...], asyncio.Lock] = {}

    @staticmethod
    def _key(rule: ForwardingRule) -> tuple[object, ...]:
        return (rule.match, rule.dcid)

    def _message(self, rule: ForwardingRule) -> Any:
        from controller.proto import northbound_pb2 as nb  # noqa: PLC0415

        return nb.QuicMapping(
            direction=rule.direction, src_addr=rule.match.src[0], src_port=rule.match.src[1],
            dst_addr=rule.match.dst[0], dst_port=rule.match.dst[1], dcid=rule.dcid,
            out_src_addr=rule.out.src[0], out_src_port=rule.out.src[1],
            out_dst_addr=rule.out.dst[0], out_dst_port=rule.out.dst[1],
            new_dcid=rule.new_dcid, rank=rule.rank, tunnel=rule.tunnel)

    async def install(self, rule: ForwardingRule) -> None:
        """Ask the controller to install `rule` in the switch (declined rules stay host-only)."""
        reason = switch_can_apply(rule)
        if reason is not None:
            self.stats["declined"] += 1
            log.info("forwarded mode: %s stays on the proxy host: %s", rule, reason)
            return
        key = self._key(rule)
        started = time.monotonic()
        async with self._locks.setdefault(key, asyncio.Lock()):
            try:
                await self._batches.install(self._message(rule))
            except Exception as exc:  # noqa: BLE001 - the host forwards what the switch misses
                self.stats["failed"] += 1
                log.warning("forwarded mode: the switch did not take %s: %s", rule,
                            _why(exc))
                return
            self._installed[key] = rule
            self.stats["installed"] += 1
            took = round(1000 * (time.monotonic() - started))
            self.stats["install_ms_total"] += took
            self.stats["install_ms_max"] = max(self.stats["install_ms_max"], took)
            log.info("forwarded mode: the switch forwards %s", rule)

    async def reinstall(self) -> None:
        """Install every rule this table holds again (the controller removed them with the
        proxy's previous session)."""
        async def again(key: tuple[object, ...], rule: ForwardingRule) -> None:
            async with self._locks.setdefault(key, asyncio.Lock()):
                if key not in self._installed:
                    return  # removed meanwhile
                try:
                    await self._batches.install(self._message(rule))
                except Exception as exc:  # noqa: BLE001
                    self._installed.pop(key, None)  # the host forwards it from now on
                    self.stats["failed"] += 1
                    log.warning("forwarded mode: %s not installed again: %s", rule, _why(exc))
                    return
                self.stats["reinstalled"] += 1

        rules = list(self._installed.items())
        if rules:
            log.info("forwarded mode: installing %d rules again in the new session", len(rules))
            await asyncio.gather(*(again(key, rule) for key, rule in rules))

    async def remove(self, rule: ForwardingRule) -> None:
        """Ask the controller to remove `rule` from the switch, if it was installed there."""
        key = self._key(rule)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._installed:
                return
            try:
                await self.northbound.stub().RemoveQuicMapping(
                    self._message(rule), **self.northbound.call_options())
            except Exception as exc:  # noqa: BLE001
                self.stats["failed"] += 1
                log.warning("forwarded mode: removing %s from the switch failed: %s", rule,
                            _why(exc))
                return
            self._installed.pop(key, None)
            self.stats["removed"] += 1
        self._locks.pop(key, None)
