"""Reading the switch's direct counters while a flow is open, as a backup P4Runtime client
beside the controller (a lower election id), for the topology's demonstration."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from hostagent.certs import RunPki
from topologies.masque_plan import READER_ELECTION_ID


class CounterReader:
    """Reads decap_counter/encap_counter as a backup P4Runtime client, in a thread, until
    stopped; keeps the last reading that found the flow's entries."""

    def __init__(self, grpc_addr: str, interval: float = 0.005,
                 pki: RunPki | None = None) -> None:
        self.grpc_addr = grpc_addr
        self.pki = pki  # the run's PKI: P4Runtime over mutual TLS (None: plaintext)
        self.interval = interval
        self.last: dict[str, tuple[int, int]] = {}
        self.flow_reads = 0
        self.error = ""
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True,
                                        name="counter-reader")

    def start(self, timeout: float = 15.0) -> None:
        """Start reading; returns once the session is open (or failed)."""
        self._thread.start()
        self._ready.wait(timeout)

    def stop(self) -> None:
        """Stop reading (a last read first) and join the thread."""
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        import finsy as fy

        from clikit.tls import TlsFiles
        from controller.p4runtime import NotPrimary, P4RuntimeSession

        tls = None if self.pki is None else TlsFiles(self.pki.client_cert, self.pki.client_key,
                                                     self.pki.ca)
        session = P4RuntimeSession(self.grpc_addr, election_id=READER_ELECTION_ID, tls=tls)
        try:
            with contextlib.suppress(NotPrimary):
                await session.open()  # the controller (a higher election id) stays primary
        except Exception as exc:  # noqa: BLE001 - reported, the demo goes on
            self.error = str(exc)
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                stopping = self._stop.is_set()
                reading: dict[str, tuple[int, int]] = {}
                present = True  # both entries read: the flow was open for the whole reading
                for name in ("decap_counter", "encap_counter"):
                    found = await session.read([fy.P4DirectCounterEntry(name)])
                    present = present and bool(found)
                    reading[name] = (sum(e.data.packet_count for e in found),
                                     sum(e.data.byte_count for e in found))
                if present:
                    self.last = reading
                    self.flow_reads += 1
                if stopping:
                    return
                await asyncio.sleep(self.interval)
        except Exception as exc:  # noqa: BLE001
            self.error = str(exc)
        finally:
            await session.close()
