"""A proxy's controller side and nothing else, for tests/controller/test_sessions.py: open
a session with `ControllerFastPath` (mp-proxy's code), install one QUIC mapping in it,
say so, then either close cleanly (`close`) or wait to be killed (`wait`)."""

from __future__ import annotations

import asyncio
import sys

from controller.proto import northbound_pb2 as nb
from hostagent.masque.fastpath import ControllerFastPath

MAPPING = nb.QuicMapping(
    direction="to_target", src_addr="10.0.1.10", src_port=5000, dst_addr="10.0.2.10",
    dst_port=4433, dcid=b"\x01" * 8, out_src_addr="10.0.2.10", out_src_port=40001,
    out_dst_addr="10.0.3.10", out_dst_port=4433, new_dcid=b"\x02" * 8, rank=100,
    tunnel="stream 0")


async def main(controller: str, then: str) -> None:
    hook = ControllerFastPath(controller, "t-proxy")
    if not await hook.open_session(wait=10):
        raise SystemExit("no session")
    await hook.stub().InstallQuicMapping(MAPPING, **hook.call_options())
    print(f"installed in {hook.session_id}", flush=True)
    if then == "close":
        await hook.aclose()
        print("closed", flush=True)
        return
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
