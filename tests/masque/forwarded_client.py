"""The client of the forwarded-mode end-to-end test, run inside the client's namespace.

    python tests/masque/forwarded_client.py PROXY:PORT TARGET:PORT RELEASE_FILE

Opens a tunnel asking for forwarded mode (draft-ietf-masque-quic-proxy), runs an inner
QUIC echo through it (the handshake tunnelled, then short headers forwarded with
virtual connection IDs), switches to a new target connection ID in the middle of a
transfer (once RELEASE_FILE.rotate exists, after ``FIRST_DONE``), prints ``RESULT
{json}``, and keeps the tunnel (and so the switch's mappings) until RELEASE_FILE exists;
then closes and prints ``CLOSED``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from clikit.args import parse_host_port
from hostagent.masque.client import MasqueClient

PAYLOAD = bytes(range(256)) * 400  # 100 KB


async def wait_until(predicate: object, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


async def main(proxy: str, target: str, release: Path) -> None:
    rotate = release.with_name(release.name + ".rotate")
    phost, pport = parse_host_port(proxy)
    thost, tport = parse_host_port(target)
    async with MasqueClient(phost, pport) as client:
        tunnel = await client.open_udp(thost, tport, quic_forwarding=True)
        result: dict[str, object] = {"forwarding": tunnel.forwarding,
                                     "reason": tunnel.quic_forwarding_reason}
        fwd = tunnel.quic_proxy
        if tunnel.forwarding and fwd is not None:
            inner = await tunnel.quic(timeout=20)

            def ready() -> bool:
                inner._pump()
                return (inner.quic._peer_cid.cid in fwd.target_vcids
                        and len(tunnel.client._proto.vcid_index) > 0)

            result["ready"] = await wait_until(ready)
            first = await inner.request(PAYLOAD, timeout=30)
            # the rotation makes the target switch to a new client CID too: let the test
            # see the switch hold every mapping first (ROTATE_FILE), so that what the
            # proxy host forwards is only the set-up window, not a mapping still queued
            print("FIRST_DONE", flush=True)
            await wait_until(rotate.exists)
            old_cid = inner.quic._peer_cid.cid
            echo = inner.send(PAYLOAD)
            await asyncio.sleep(0.05)
            inner.quic.change_connection_id()  # a new target CID mid-transfer
            inner._pump()
            second = await asyncio.wait_for(echo, 30)
            result["rotated"] = inner.quic._peer_cid.cid != old_cid
            result["new_cid_mapped"] = await wait_until(
                lambda: inner.quic._peer_cid.cid in fwd.target_vcids)
            third = await inner.request(PAYLOAD, timeout=30)
            result["echo_ok"] = first == second == third == PAYLOAD
            c = fwd.counters
            result["counters"] = {"sent": c.sent, "received": c.received,
                                  "tunnelled_short": c.tunnelled_short,
                                  "rejected": list(c.rejected)}
            inner.close()
            await asyncio.sleep(0.2)
        print("RESULT " + json.dumps(result), flush=True)
        while not release.exists():
            await asyncio.sleep(0.05)
        tunnel.close()
        await asyncio.sleep(0.3)
    print("CLOSED", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
