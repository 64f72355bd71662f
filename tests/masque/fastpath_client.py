"""The client of the fast-path end-to-end test, run inside the client's namespace.

    python tests/masque/fastpath_client.py PROXY:PORT TARGET:PORT RELEASE_FILE

Opens a tunnel with the fast path, runs an inner QUIC echo through it, prints
``RESULT {json}`` (the tunnel's state and counters), then keeps the tunnel (and
so the switch flow) open until RELEASE_FILE exists, so that the test can read the
switch's counters meanwhile; then closes and prints ``CLOSED``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from clikit.args import parse_host_port
from hostagent.masque.client import MasqueClient
from hostagent.schedulers import StreamMeta


async def main(proxy: str, target: str, release: Path) -> None:
    """One fast-path tunnel, five inner requests of 3000 B on priorities 0..4."""
    phost, pport = parse_host_port(proxy)
    thost, tport = parse_host_port(target)
    async with MasqueClient(phost, pport) as client:
        tunnel = await client.open_udp(thost, tport, fastpath=True, meta=StreamMeta(priority=1),
                                       fastpath_dscp={0: 46, 4: 10})
        result: dict[str, object] = {"fastpath": tunnel.fastpath, "on": tunnel.on_fastpath,
                                     "reason": tunnel.fastpath_reason,
                                     "flow": tunnel.fastpath_flow}
        if tunnel.on_fastpath:
            inner = await tunnel.quic(timeout=20)
            payloads = [bytes([65 + i]) * 3000 for i in range(5)]
            answers = await asyncio.gather(*(inner.request(p, StreamMeta(priority=i), timeout=20)
                                             for i, p in enumerate(payloads)))
            result["echo_ok"] = answers == payloads
            result["counters"] = tunnel.counters()
            inner.close()
            await asyncio.sleep(0.2)
            result["counters"] = tunnel.counters()
        print("RESULT " + json.dumps(result), flush=True)
        while not release.exists():
            await asyncio.sleep(0.05)
        tunnel.close()
        await asyncio.sleep(0.3)
    print("CLOSED", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
