/* Constants of the Tofino (TNA) program that the v1model program does not have. The shared
 * ones (ports, sizes, drop reasons, scheduling modes, RANK_WINDOW) come from
 * p4src/include/defines.p4; p4src/tofino.py is the Python copy of these, and
 * tests/test_tna_program.py checks that the two agree. */
#ifndef MP_TNA_DEFINES_P4
#define MP_TNA_DEFINES_P4

#include "../../include/defines.p4"

/* What the ingress tells the egress in the bridged header. */
const bit<8> BRIDGED_PACKET = 0;   /* an ordinary packet: egress records its queue's depth */
const bit<8> BRIDGED_WORKER = 1;   /* a depth worker on its way to the loopback port */

/* Queue-depth workers: the frames the packet generator sends to carry egress queue depths
 * back to the ingress (AIFO and PACKS need them there). An IEEE local-experimental
 * EtherType; such frames are accepted only from the ports the depth_worker table lists. */
const bit<16> ETHERTYPE_DEPTH_REPORT = 0x88B5;
const bit<8> WORKER_OUTBOUND = 0;  /* as generated: goes to the loopback port */
const bit<8> WORKER_RETURNING = 1; /* filled in by the egress: its depths go to registers */

/* The ingress's verdict on a worker (meta.worker). */
const bit<2> WORKER_NONE = 0;
const bit<2> WORKER_SEND = 1;
const bit<2> WORKER_STORE = 2;

/* SP-PIFO's push-down, applied in a second ingress pass (resubmission). */
const ResubmitType_t RESUBMIT_PUSH_DOWN = 1;

/* The AIFO/PACKS window is unrolled into one register per slot; its ring pointer wraps
 * after the last one. Tofino 1 has 4 stateful ALUs per stage, and the window's slots
 * must be read after the rank is final and early enough for the count, the admission
 * lookup and the queue choice to follow within 12 stages, beside SP-PIFO's 8-stage
 * chain: 8 slots fit, the v1model program's 20 (RANK_WINDOW) do not (docs/tofino.md). */
const bit<32> TNA_RANK_WINDOW = 8;
const bit<8> WINDOW_LAST_SLOT = (bit<8>) (TNA_RANK_WINDOW - 1);

/* Egress queue depths are Tofino's, in 80-byte cells, kept as 16 bits (saturating). */
typedef bit<16> cells_t;
/* Sums of up to 8 depths: held cells of a port, its capacity and its free cells. */
typedef bit<20> cells_sum_t;
const bit<19> CELLS_MAX = 0xffff;

#endif
