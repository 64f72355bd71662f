"""Keeps one switch in the intended state: connect, become primary, install, and do it
all again whenever the switch comes back (restart or replacement).

On connect the agent compares the switch's pipeline cookie with its own. A
different (or no) cookie means a new or restarted switch: push the pipeline and
write every entry. The same cookie means the controller restarted while the
switch kept running: read the switch's entries and write only the difference,
so traffic is not disturbed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from finsy.p4client import P4ClientError
from finsy.proto import p4r

from controller.config import SwitchConf
from controller.p4runtime import NotPrimary, P4RuntimeSession
from controller.write_batcher import MAX_UPDATES, WriteBatcher, table_entry_key
from p4src.pipeline import BMV2_JSON, P4INFO

log = logging.getLogger("mp-controller.switch")


def pipeline_cookie() -> int:
    """A 64-bit cookie naming the committed pipeline (P4Info + BMv2 JSON)."""
    digest = hashlib.sha256(P4INFO.read_bytes() + BMV2_JSON.read_bytes()).digest()
    return int.from_bytes(digest[:8], "big")


class SwitchAgent:
    """One switch: a reconnecting P4Runtime session and the entries it must hold."""

    def __init__(self, conf: SwitchConf,
                 desired: Callable[[], tuple[list[Any], list[Any]]],
                 retry_s: float = 0.5) -> None:
        self.conf = conf
        self.desired = desired  # () -> (entries to hold, default entries)
        self.retry_s = retry_s
        self.session: P4RuntimeSession | None = None
        self.connected = asyncio.Event()
        self.last_restore_s: float | None = None
        self.restores = 0
        self.cookie = pipeline_cookie()
        self._lock = asyncio.Lock()
        #: concurrent writes share WriteRequests (controller/write_batcher.py)
        self.batcher = WriteBatcher(self._send)

    async def run(self) -> None:
        """Connect, sync, wait for the switch to go away, repeat; until cancelled."""
        while True:
            session = P4RuntimeSession(self.conf.address, self.conf.device_id,
                                       self.conf.election_id, take_over=True,
                                       tls=self.conf.tls)
            try:
                await session.open(timeout=5)
                async with self._lock:
                    self.session = session
                    await self._sync(session)
                    self.connected.set()
                await session.closed.wait()
                log.warning("%s: switch went away; reconnecting", self.conf.name)
            except NotPrimary as exc:
                log.error("%s: %s", self.conf.name, exc)
            except (P4ClientError, OSError, TimeoutError) as exc:
                log.info("%s: not reachable (%s); retrying", self.conf.name,
                         str(exc).splitlines()[0][:200])
            finally:
                self.connected.clear()
                self.session = None
                await session.close()
            await asyncio.sleep(self.retry_s)

    async def _sync(self, session: P4RuntimeSession) -> None:
        started = time.monotonic()
        entries, defaults = self.desired()
        schema = session.schema
        want = {table_entry_key(te): te
                for te in (e.encode(schema).table_entry for e in entries)}
        cookie = await session.pipeline_cookie()
        updates: list[p4r.Update] = []
        if cookie != self.cookie:
            await session.set_pipeline(cookie=self.cookie)
            updates = [p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(table_entry=te))
                       for te in want.values()]
            how = "pipeline pushed"
        else:
            have = {}
            for entity in await session.read_raw([p4r.Entity(table_entry=p4r.TableEntry())]):
                te = entity.table_entry
                have[table_entry_key(te)] = te
            for key, te in want.items():
                if key not in have:
                    updates.append(p4r.Update(type=p4r.Update.INSERT,
                                              entity=p4r.Entity(table_entry=te)))
                elif have[key].action != te.action:
                    updates.append(p4r.Update(type=p4r.Update.MODIFY,
                                              entity=p4r.Entity(table_entry=te)))
            for key, te in have.items():
                if key not in want:
                    stale = p4r.TableEntry(table_id=te.table_id, match=te.match,
                                           priority=te.priority)
                    updates.append(p4r.Update(type=p4r.Update.DELETE,
                                              entity=p4r.Entity(table_entry=stale)))
            how = "reconciled"
        updates += [p4r.Update(type=p4r.Update.MODIFY, entity=d.encode(schema))
                    for d in defaults]
        for start in range(0, len(updates), MAX_UPDATES):
            await session.write_raw(updates[start:start + MAX_UPDATES])
        self.last_restore_s = time.monotonic() - started
        self.restores += 1
        log.info("%s: %s, %d updates written in %.3f s", self.conf.name, how, len(updates),
                 self.last_restore_s)

    async def write(self, updates: list[Any]) -> None:
        """Apply intent changes now if connected (else the next sync installs them), in one
        WriteRequest with the other writes queued meanwhile."""
        session = self.session
        if session is None or not self.connected.is_set():
            return
        await self.batcher.write(session.encode(updates))

    async def _send(self, updates: list[p4r.Update]) -> None:
        async with self._lock:
            if self.session is None or not self.connected.is_set():
                return  # the switch went away meanwhile: the next sync installs the intent
            await self.session.write_raw(updates)

    async def read(self, entities: list[Any]) -> list[Any]:
        async with self._lock:
            if self.session is None:
                raise ConnectionError(f"switch {self.conf.name} is not connected")
            return await self.session.read(entities)
