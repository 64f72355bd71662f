"""Quiet interfaces for frames read with AF_PACKET (a P4 switch, the link emulator, a
packet test): finished frames only, and no traffic of the kernel's own.

With checksum and segmentation offloads on, a veth hands its reader frames with partial
checksums and TSO/GSO super-frames, and under load BMv2's packet capture loses frames
(measured: 10 to 17 of 20,000 garbage frames; none with offloads off on both ends before
the switch starts). IPv6 off keeps router and neighbour solicitations out of counters
and loss models.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

#: ethtool features turned off on every end a P4 switch, the emulator or a test reads
OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "gro", "off")


def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def offloads_off(ifname: str, netns: str | None = None, required: bool = True) -> bool:
    """Turn checksum and segmentation offloads off on `ifname` (in `netns`, or here).

    Returns False when ethtool is missing and `required` is False; raises RuntimeError
    when it is missing and required, or when ethtool fails.
    """
    if shutil.which("ethtool") is None:
        if required:
            raise RuntimeError("ethtool (Debian package ethtool) is needed to turn off "
                               "checksum and segmentation offloads")
        return False
    done = subprocess.run(_in_netns(netns, ["ethtool", "-K", ifname, *OFFLOADS_OFF]),
                          capture_output=True, text=True)
    # ethtool exits non-zero when one feature cannot change (e.g. fixed on this driver);
    # veths support all of them, so only a missing interface is an error worth raising
    if done.returncode != 0 and "No such device" in done.stderr:
        raise RuntimeError(f"ethtool -K {ifname}: {done.stderr.strip()}")
    return True


def no_ipv6(ifname: str) -> None:
    """Turn IPv6 off on `ifname` in this namespace, where the kernel has IPv6."""
    path = Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")
    if path.exists():
        path.write_text("1\n")
