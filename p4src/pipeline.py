"""The compiled MASQUE/PIFO pipeline: where its p4c outputs are, and the one Python copy of
the constants of p4src/include/defines.p4 that software needs (ports, sizes, rank width,
codes). Everything in Python that shares a number with the P4 program imports it from here;
tests/test_p4_program.py checks that the two agree."""

from __future__ import annotations

import enum
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAM = "masque_pifo"
BMV2_JSON = REPO / "p4src" / "build" / f"{PROGRAM}.json"
P4INFO = REPO / "p4src" / "build" / f"{PROGRAM}.p4info.txtpb"

CPU_PORT = 255
DROP_PORT = 511
NUM_QUEUES = 8

#: Ranks are `rank_t` (bit<16>) in P4: smaller is more urgent.
RANK_BITS = 16
RANK_MAX = (1 << RANK_BITS) - 1

#: The private fast-path shim (hostagent/shim.py): UDP port, version, size in bytes.
FASTPATH_PORT = 4434
SHIM_VERSION = 1
SHIM_BYTES = 8

#: Forwarded mode (draft-ietf-masque-quic-proxy-06): the one connection-ID length the
#: switch matches and rewrites (the proxy's virtual CIDs), and the shortest UDP datagram
#: it parses as a QUIC short header (UDP header, first byte, DCID).
VCID_BYTES = 8
QUIC_SHORT_MIN_UDP_LEN = 8 + 1 + VCID_BYTES

#: AIFO and PACKS: ranks in the sliding window that estimates a rank's quantile.
RANK_WINDOW = 20
#: The largest queue depth the AIFO/PACKS arithmetic is sized for (32-bit products).
MAX_QUEUE_DEPTH = 4096


class DropReason(enum.IntEnum):
    """Indices of the `drops` counter."""

    PARSER_ERROR = 0
    NOT_IPV4 = 1
    IPV4_OPTIONS = 2
    IPV4_CHECKSUM = 3
    TTL_EXPIRED = 4
    NO_ROUTE = 5
    SHIM_VERSION = 6
    SPOOFED_FLOW = 7
    ADMISSION = 8
    QUEUE_FULL = 9


class MissCounter(enum.IntEnum):
    """Indices of the `fastpath_misses` counter."""

    TO_SLOW_PATH = 0
    TO_CPU = 1


class SchedMode(enum.IntEnum):
    """Arguments of the `sched_mode` table's `set_mode` action."""

    FIFO = 0
    STRICT = 1
    SPPIFO = 2
    AIFO = 3
    PACKS = 4
