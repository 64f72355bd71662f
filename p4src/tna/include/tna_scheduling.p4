/* Scheduling in the Tofino program: the rank picks one of 8 queues of the egress port
 * through ig_tm_md.qid; the control plane gives queue q strict priority q in the traffic
 * manager (7 is served first, as BMv2's priority 7), so the queue numbers mean what they
 * mean in the v1model program. FIFO, STRICT (a range table), SP-PIFO (Alcoz et al.,
 * NSDI'20), AIFO (Yu et al., SIGCOMM'21) and PACKS (Alcoz et al., NSDI'25).
 *
 * Tofino lets a packet touch a register once per pass, through one RegisterAction, and
 * has no general multiplier; every algorithm below is written under those two rules.
 * docs/tofino.md says where each one differs from the v1model program, and why. */
#ifndef MP_TNA_SCHEDULING_P4
#define MP_TNA_SCHEDULING_P4

#include "tna_headers.p4"

/* ---------------------------------------------------------------------------------
 * SP-PIFO. One register per queue bound (bound_qN guards queue N), all in one pass read
 * in scan order, lowest priority first: each RegisterAction pushes its bound up to the
 * rank and admits the packet, or declines and the scan goes on to the next queue. The
 * highest-priority queue (7) always takes what reaches it; if the rank was below its
 * bound, it returns the push-down cost, and the packet is resubmitted to subtract that
 * cost from the other seven bounds in a second pass (a register cannot be touched twice
 * in one pass). That is the scheme of SP-PIFO's own Tofino program, with the v1model
 * program's arithmetic: bounds stop at 0 instead of wrapping. */

#define SPPIFO_BOUND(Q)                                                              \
    Register<rank_t, bit<1>>(1, 0) sppifo_bound_q##Q;                                \
    RegisterAction<rank_t, bit<1>, bit<1>>(sppifo_bound_q##Q) push_up_q##Q = {        \
        void apply(inout rank_t bound, out bit<1> admitted) {                         \
            admitted = 0;                                                             \
            if (meta.rank >= bound) {                                                 \
                bound = meta.rank;                                                    \
                admitted = 1;                                                         \
            }                                                                         \
        }                                                                             \
    };                                                                                \
    RegisterAction<rank_t, bit<1>, bit<1>>(sppifo_bound_q##Q) push_down_q##Q = {      \
        void apply(inout rank_t bound) {                                              \
            if (bound > meta.push_down.cost) {                                        \
                bound = bound - meta.push_down.cost;                                  \
            } else {                                                                  \
                bound = 0;                                                            \
            }                                                                         \
        }                                                                             \
    };

/* ---------------------------------------------------------------------------------
 * AIFO's and PACKS's rank window: the last TNA_RANK_WINDOW (8) ranks, unrolled into one
 * register per slot (a window in one register array would need 8 reads of it in one
 * pass). A ring pointer names the oldest slot. Each slot's RegisterAction says whether
 * its rank is below the packet's and, if it is the oldest, takes the packet's rank: the
 * packet is compared with the window before it, as in the v1model program. Tofino 1 has
 * 4 stateful ALUs per stage, shared with SP-PIFO's bounds and the depth registers, so the
 * slots spread over several stages; a 256-entry table counts the 8 answers. */

#define RANK_SLOT(I)                                                                 \
    Register<rank_t, bit<1>>(1, 0) rank_window_##I;                                   \
    RegisterAction<rank_t, bit<1>, bit<1>>(rank_window_##I) rank_slot_##I = {          \
        void apply(inout rank_t slot, out bit<1> is_below) {                          \
            is_below = 0;                                                             \
            if (slot < meta.rank) {                                                   \
                is_below = 1;                                                         \
            }                                                                         \
            if (meta.window_head == I) {                                              \
                slot = meta.rank;                                                     \
            }                                                                         \
        }                                                                             \
    };

control RankWindow(inout tna_metadata_t meta, out bit<8> below) {

    Register<bit<8>, bit<1>>(1, 0) rank_window_head;
    RegisterAction<bit<8>, bit<1>, bit<8>>(rank_window_head) advance_head = {
        void apply(inout bit<8> oldest, out bit<8> rv) {
            rv = oldest;
            if (oldest == WINDOW_LAST_SLOT) {
                oldest = 0;
            } else {
                oldest = oldest + 1;
            }
        }
    };

    RANK_SLOT(0)
    RANK_SLOT(1)
    RANK_SLOT(2)
    RANK_SLOT(3)
    RANK_SLOT(4)
    RANK_SLOT(5)
    RANK_SLOT(6)
    RANK_SLOT(7)

    bit<1> b0; bit<1> b1; bit<1> b2; bit<1> b3;
    bit<1> b4; bit<1> b5; bit<1> b6; bit<1> b7;

    /* How many slots hold a rank below the packet's: one table on the eight one-bit
     * answers, 256 constant entries (one stage), where an adder tree would take three
     * stages of ALU levels and a PHV container per partial sum. */
    action set_below(bit<8> n) {
        below = n;
    }

    table count_below {
        key = {
            b0 : exact; b1 : exact; b2 : exact; b3 : exact;
            b4 : exact; b5 : exact; b6 : exact; b7 : exact;
        }
        actions = { set_below; }
        default_action = set_below(0);
        const entries = {
            (0, 0, 0, 0, 0, 0, 0, 0) : set_below(0);
            (1, 0, 0, 0, 0, 0, 0, 0) : set_below(1);
            (0, 1, 0, 0, 0, 0, 0, 0) : set_below(1);
            (1, 1, 0, 0, 0, 0, 0, 0) : set_below(2);
            (0, 0, 1, 0, 0, 0, 0, 0) : set_below(1);
            (1, 0, 1, 0, 0, 0, 0, 0) : set_below(2);
            (0, 1, 1, 0, 0, 0, 0, 0) : set_below(2);
            (1, 1, 1, 0, 0, 0, 0, 0) : set_below(3);
            (0, 0, 0, 1, 0, 0, 0, 0) : set_below(1);
            (1, 0, 0, 1, 0, 0, 0, 0) : set_below(2);
            (0, 1, 0, 1, 0, 0, 0, 0) : set_below(2);
            (1, 1, 0, 1, 0, 0, 0, 0) : set_below(3);
            (0, 0, 1, 1, 0, 0, 0, 0) : set_below(2);
            (1, 0, 1, 1, 0, 0, 0, 0) : set_below(3);
            (0, 1, 1, 1, 0, 0, 0, 0) : set_below(3);
            (1, 1, 1, 1, 0, 0, 0, 0) : set_below(4);
            (0, 0, 0, 0, 1, 0, 0, 0) : set_below(1);
            (1, 0, 0, 0, 1, 0, 0, 0) : set_below(2);
            (0, 1, 0, 0, 1, 0, 0, 0) : set_below(2);
            (1, 1, 0, 0, 1, 0, 0, 0) : set_below(3);
            (0, 0, 1, 0, 1, 0, 0, 0) : set_below(2);
            (1, 0, 1, 0, 1, 0, 0, 0) : set_below(3);
            (0, 1, 1, 0, 1, 0, 0, 0) : set_below(3);
            (1, 1, 1, 0, 1, 0, 0, 0) : set_below(4);
            (0, 0, 0, 1, 1, 0, 0, 0) : set_below(2);
            (1, 0, 0, 1, 1, 0, 0, 0) : set_below(3);
            (0, 1, 0, 1, 1, 0, 0, 0) : set_below(3);
            (1, 1, 0, 1, 1, 0, 0, 0) : set_below(4);
            (0, 0, 1, 1, 1, 0, 0, 0) : set_below(3);
            (1, 0, 1, 1, 1, 0, 0, 0) : set_below(4);
            (0, 1, 1, 1, 1, 0, 0, 0) : set_below(4);
            (1, 1, 1, 1, 1, 0, 0, 0) : set_below(5);
            (0, 0, 0, 0, 0, 1, 0, 0) : set_below(1);
            (1, 0, 0, 0, 0, 1, 0, 0) : set_below(2);
            (0, 1, 0, 0, 0, 1, 0, 0) : set_below(2);
            (1, 1, 0, 0, 0, 1, 0, 0) : set_below(3);
            (0, 0, 1, 0, 0, 1, 0, 0) : set_below(2);
            (1, 0, 1, 0, 0, 1, 0, 0) : set_below(3);
            (0, 1, 1, 0, 0, 1, 0, 0) : set_below(3);
            (1, 1, 1, 0, 0, 1, 0, 0) : set_below(4);
            (0, 0, 0, 1, 0, 1, 0, 0) : set_below(2);
            (1, 0, 0, 1, 0, 1, 0, 0) : set_below(3);
            (0, 1, 0, 1, 0, 1, 0, 0) : set_below(3);
            (1, 1, 0, 1, 0, 1, 0, 0) : set_below(4);
            (0, 0, 1, 1, 0, 1, 0, 0) : set_below(3);
            (1, 0, 1, 1, 0, 1, 0, 0) : set_below(4);
            (0, 1, 1, 1, 0, 1, 0, 0) : set_below(4);
            (1, 1, 1, 1, 0, 1, 0, 0) : set_below(5);
            (0, 0, 0, 0, 1, 1, 0, 0) : set_below(2);
            (1, 0, 0, 0, 1, 1, 0, 0) : set_below(3);
            (0, 1, 0, 0, 1, 1, 0, 0) : set_below(3);
            (1, 1, 0, 0, 1, 1, 0, 0) : set_below(4);
            (0, 0, 1, 0, 1, 1, 0, 0) : set_below(3);
            (1, 0, 1, 0, 1, 1, 0, 0) : set_below(4);
            (0, 1, 1, 0, 1, 1, 0, 0) : set_below(4);
            (1, 1, 1, 0, 1, 1, 0, 0) : set_below(5);
            (0, 0, 0, 1, 1, 1, 0, 0) : set_below(3);
            (1, 0, 0, 1, 1, 1, 0, 0) : set_below(4);
            (0, 1, 0, 1, 1, 1, 0, 0) : set_below(4);
            (1, 1, 0, 1, 1, 1, 0, 0) : set_below(5);
            (0, 0, 1, 1, 1, 1, 0, 0) : set_below(4);
            (1, 0, 1, 1, 1, 1, 0, 0) : set_below(5);
            (0, 1, 1, 1, 1, 1, 0, 0) : set_below(5);
            (1, 1, 1, 1, 1, 1, 0, 0) : set_below(6);
            (0, 0, 0, 0, 0, 0, 1, 0) : set_below(1);
            (1, 0, 0, 0, 0, 0, 1, 0) : set_below(2);
            (0, 1, 0, 0, 0, 0, 1, 0) : set_below(2);
            (1, 1, 0, 0, 0, 0, 1, 0) : set_below(3);
            (0, 0, 1, 0, 0, 0, 1, 0) : set_below(2);
            (1, 0, 1, 0, 0, 0, 1, 0) : set_below(3);
            (0, 1, 1, 0, 0, 0, 1, 0) : set_below(3);
            (1, 1, 1, 0, 0, 0, 1, 0) : set_below(4);
            (0, 0, 0, 1, 0, 0, 1, 0) : set_below(2);
            (1, 0, 0, 1, 0, 0, 1, 0) : set_below(3);
            (0, 1, 0, 1, 0, 0, 1, 0) : set_below(3);
            (1, 1, 0, 1, 0, 0, 1, 0) : set_below(4);
            (0, 0, 1, 1, 0, 0, 1, 0) : set_below(3);
            (1, 0, 1, 1, 0, 0, 1, 0) : set_below(4);
            (0, 1, 1, 1, 0, 0, 1, 0) : set_below(4);
            (1, 1, 1, 1, 0, 0, 1, 0) : set_below(5);
            (0, 0, 0, 0, 1, 0, 1, 0) : set_below(2);
            (1, 0, 0, 0, 1, 0, 1, 0) : set_below(3);
            (0, 1, 0, 0, 1, 0, 1, 0) : set_below(3);
            (1, 1, 0, 0, 1, 0, 1, 0) : set_below(4);
            (0, 0, 1, 0, 1, 0, 1, 0) : set_below(3);
            (1, 0, 1, 0, 1, 0, 1, 0) : set_below(4);
            (0, 1, 1, 0, 1, 0, 1, 0) : set_below(4);
            (1, 1, 1, 0, 1, 0, 1, 0) : set_below(5);
            (0, 0, 0, 1, 1, 0, 1, 0) : set_below(3);
            (1, 0, 0, 1, 1, 0, 1, 0) : set_below(4);
            (0, 1, 0, 1, 1, 0, 1, 0) : set_below(4);
            (1, 1, 0, 1, 1, 0, 1, 0) : set_below(5);
            (0, 0, 1, 1, 1, 0, 1, 0) : set_below(4);
            (1, 0, 1, 1, 1, 0, 1, 0) : set_below(5);
            (0, 1, 1, 1, 1, 0, 1, 0) : set_below(5);
            (1, 1, 1, 1, 1, 0, 1, 0) : set_below(6);
            (0, 0, 0, 0, 0, 1, 1, 0) : set_below(2);
            (1, 0, 0, 0, 0, 1, 1, 0) : set_below(3);
            (0, 1, 0, 0, 0, 1, 1, 0) : set_below(3);
            (1, 1, 0, 0, 0, 1, 1, 0) : set_below(4);
            (0, 0, 1, 0, 0, 1, 1, 0) : set_below(3);
            (1, 0, 1, 0, 0, 1, 1, 0) : set_below(4);
            (0, 1, 1, 0, 0, 1, 1, 0) : set_below(4);
            (1, 1, 1, 0, 0, 1, 1, 0) : set_below(5);
            (0, 0, 0, 1, 0, 1, 1, 0) : set_below(3);
            (1, 0, 0, 1, 0, 1, 1, 0) : set_below(4);
            (0, 1, 0, 1, 0, 1, 1, 0) : set_below(4);
            (1, 1, 0, 1, 0, 1, 1, 0) : set_below(5);
            (0, 0, 1, 1, 0, 1, 1, 0) : set_below(4);
            (1, 0, 1, 1, 0, 1, 1, 0) : set_below(5);
            (0, 1, 1, 1, 0, 1, 1, 0) : set_below(5);
            (1, 1, 1, 1, 0, 1, 1, 0) : set_below(6);
            (0, 0, 0, 0, 1, 1, 1, 0) : set_below(3);
            (1, 0, 0, 0, 1, 1, 1, 0) : set_below(4);
            (0, 1, 0, 0, 1, 1, 1, 0) : set_below(4);
            (1, 1, 0, 0, 1, 1, 1, 0) : set_below(5);
            (0, 0, 1, 0, 1, 1, 1, 0) : set_below(4);
            (1, 0, 1, 0, 1, 1, 1, 0) : set_below(5);
            (0, 1, 1, 0, 1, 1, 1, 0) : set_below(5);
            (1, 1, 1, 0, 1, 1, 1, 0) : set_below(6);
            (0, 0, 0, 1, 1, 1, 1, 0) : set_below(4);
            (1, 0, 0, 1, 1, 1, 1, 0) : set_below(5);
            (0, 1, 0, 1, 1, 1, 1, 0) : set_below(5);
            (1, 1, 0, 1, 1, 1, 1, 0) : set_below(6);
            (0, 0, 1, 1, 1, 1, 1, 0) : set_below(5);
            (1, 0, 1, 1, 1, 1, 1, 0) : set_below(6);
            (0, 1, 1, 1, 1, 1, 1, 0) : set_below(6);
            (1, 1, 1, 1, 1, 1, 1, 0) : set_below(7);
            (0, 0, 0, 0, 0, 0, 0, 1) : set_below(1);
            (1, 0, 0, 0, 0, 0, 0, 1) : set_below(2);
            (0, 1, 0, 0, 0, 0, 0, 1) : set_below(2);
            (1, 1, 0, 0, 0, 0, 0, 1) : set_below(3);
            (0, 0, 1, 0, 0, 0, 0, 1) : set_below(2);
            (1, 0, 1, 0, 0, 0, 0, 1) : set_below(3);
            (0, 1, 1, 0, 0, 0, 0, 1) : set_below(3);
            (1, 1, 1, 0, 0, 0, 0, 1) : set_below(4);
            (0, 0, 0, 1, 0, 0, 0, 1) : set_below(2);
            (1, 0, 0, 1, 0, 0, 0, 1) : set_below(3);
            (0, 1, 0, 1, 0, 0, 0, 1) : set_below(3);
            (1, 1, 0, 1, 0, 0, 0, 1) : set_below(4);
            (0, 0, 1, 1, 0, 0, 0, 1) : set_below(3);
            (1, 0, 1, 1, 0, 0, 0, 1) : set_below(4);
            (0, 1, 1, 1, 0, 0, 0, 1) : set_below(4);
            (1, 1, 1, 1, 0, 0, 0, 1) : set_below(5);
            (0, 0, 0, 0, 1, 0, 0, 1) : set_below(2);
            (1, 0, 0, 0, 1, 0, 0, 1) : set_below(3);
            (0, 1, 0, 0, 1, 0, 0, 1) : set_below(3);
            (1, 1, 0, 0, 1, 0, 0, 1) : set_below(4);
            (0, 0, 1, 0, 1, 0, 0, 1) : set_below(3);
            (1, 0, 1, 0, 1, 0, 0, 1) : set_below(4);
            (0, 1, 1, 0, 1, 0, 0, 1) : set_below(4);
            (1, 1, 1, 0, 1, 0, 0, 1) : set_below(5);
            (0, 0, 0, 1, 1, 0, 0, 1) : set_below(3);
            (1, 0, 0, 1, 1, 0, 0, 1) : set_below(4);
            (0, 1, 0, 1, 1, 0, 0, 1) : set_below(4);
            (1, 1, 0, 1, 1, 0, 0, 1) : set_below(5);
            (0, 0, 1, 1, 1, 0, 0, 1) : set_below(4);
            (1, 0, 1, 1, 1, 0, 0, 1) : set_below(5);
            (0, 1, 1, 1, 1, 0, 0, 1) : set_below(5);
            (1, 1, 1, 1, 1, 0, 0, 1) : set_below(6);
            (0, 0, 0, 0, 0, 1, 0, 1) : set_below(2);
            (1, 0, 0, 0, 0, 1, 0, 1) : set_below(3);
            (0, 1, 0, 0, 0, 1, 0, 1) : set_below(3);
            (1, 1, 0, 0, 0, 1, 0, 1) : set_below(4);
            (0, 0, 1, 0, 0, 1, 0, 1) : set_below(3);
            (1, 0, 1, 0, 0, 1, 0, 1) : set_below(4);
            (0, 1, 1, 0, 0, 1, 0, 1) : set_below(4);
            (1, 1, 1, 0, 0, 1, 0, 1) : set_below(5);
            (0, 0, 0, 1, 0, 1, 0, 1) : set_below(3);
            (1, 0, 0, 1, 0, 1, 0, 1) : set_below(4);
            (0, 1, 0, 1, 0, 1, 0, 1) : set_below(4);
            (1, 1, 0, 1, 0, 1, 0, 1) : set_below(5);
            (0, 0, 1, 1, 0, 1, 0, 1) : set_below(4);
            (1, 0, 1, 1, 0, 1, 0, 1) : set_below(5);
            (0, 1, 1, 1, 0, 1, 0, 1) : set_below(5);
            (1, 1, 1, 1, 0, 1, 0, 1) : set_below(6);
            (0, 0, 0, 0, 1, 1, 0, 1) : set_below(3);
            (1, 0, 0, 0, 1, 1, 0, 1) : set_below(4);
            (0, 1, 0, 0, 1, 1, 0, 1) : set_below(4);
            (1, 1, 0, 0, 1, 1, 0, 1) : set_below(5);
            (0, 0, 1, 0, 1, 1, 0, 1) : set_below(4);
            (1, 0, 1, 0, 1, 1, 0, 1) : set_below(5);
            (0, 1, 1, 0, 1, 1, 0, 1) : set_below(5);
            (1, 1, 1, 0, 1, 1, 0, 1) : set_below(6);
            (0, 0, 0, 1, 1, 1, 0, 1) : set_below(4);
            (1, 0, 0, 1, 1, 1, 0, 1) : set_below(5);
            (0, 1, 0, 1, 1, 1, 0, 1) : set_below(5);
            (1, 1, 0, 1, 1, 1, 0, 1) : set_below(6);
            (0, 0, 1, 1, 1, 1, 0, 1) : set_below(5);
            (1, 0, 1, 1, 1, 1, 0, 1) : set_below(6);
            (0, 1, 1, 1, 1, 1, 0, 1) : set_below(6);
            (1, 1, 1, 1, 1, 1, 0, 1) : set_below(7);
            (0, 0, 0, 0, 0, 0, 1, 1) : set_below(2);
            (1, 0, 0, 0, 0, 0, 1, 1) : set_below(3);
            (0, 1, 0, 0, 0, 0, 1, 1) : set_below(3);
            (1, 1, 0, 0, 0, 0, 1, 1) : set_below(4);
            (0, 0, 1, 0, 0, 0, 1, 1) : set_below(3);
            (1, 0, 1, 0, 0, 0, 1, 1) : set_below(4);
            (0, 1, 1, 0, 0, 0, 1, 1) : set_below(4);
            (1, 1, 1, 0, 0, 0, 1, 1) : set_below(5);
            (0, 0, 0, 1, 0, 0, 1, 1) : set_below(3);
            (1, 0, 0, 1, 0, 0, 1, 1) : set_below(4);
            (0, 1, 0, 1, 0, 0, 1, 1) : set_below(4);
            (1, 1, 0, 1, 0, 0, 1, 1) : set_below(5);
            (0, 0, 1, 1, 0, 0, 1, 1) : set_below(4);
            (1, 0, 1, 1, 0, 0, 1, 1) : set_below(5);
            (0, 1, 1, 1, 0, 0, 1, 1) : set_below(5);
            (1, 1, 1, 1, 0, 0, 1, 1) : set_below(6);
            (0, 0, 0, 0, 1, 0, 1, 1) : set_below(3);
            (1, 0, 0, 0, 1, 0, 1, 1) : set_below(4);
            (0, 1, 0, 0, 1, 0, 1, 1) : set_below(4);
            (1, 1, 0, 0, 1, 0, 1, 1) : set_below(5);
            (0, 0, 1, 0, 1, 0, 1, 1) : set_below(4);
            (1, 0, 1, 0, 1, 0, 1, 1) : set_below(5);
            (0, 1, 1, 0, 1, 0, 1, 1) : set_below(5);
            (1, 1, 1, 0, 1, 0, 1, 1) : set_below(6);
            (0, 0, 0, 1, 1, 0, 1, 1) : set_below(4);
            (1, 0, 0, 1, 1, 0, 1, 1) : set_below(5);
            (0, 1, 0, 1, 1, 0, 1, 1) : set_below(5);
            (1, 1, 0, 1, 1, 0, 1, 1) : set_below(6);
            (0, 0, 1, 1, 1, 0, 1, 1) : set_below(5);
            (1, 0, 1, 1, 1, 0, 1, 1) : set_below(6);
            (0, 1, 1, 1, 1, 0, 1, 1) : set_below(6);
            (1, 1, 1, 1, 1, 0, 1, 1) : set_below(7);
            (0, 0, 0, 0, 0, 1, 1, 1) : set_below(3);
            (1, 0, 0, 0, 0, 1, 1, 1) : set_below(4);
            (0, 1, 0, 0, 0, 1, 1, 1) : set_below(4);
            (1, 1, 0, 0, 0, 1, 1, 1) : set_below(5);
            (0, 0, 1, 0, 0, 1, 1, 1) : set_below(4);
            (1, 0, 1, 0, 0, 1, 1, 1) : set_below(5);
            (0, 1, 1, 0, 0, 1, 1, 1) : set_below(5);
            (1, 1, 1, 0, 0, 1, 1, 1) : set_below(6);
            (0, 0, 0, 1, 0, 1, 1, 1) : set_below(4);
            (1, 0, 0, 1, 0, 1, 1, 1) : set_below(5);
            (0, 1, 0, 1, 0, 1, 1, 1) : set_below(5);
            (1, 1, 0, 1, 0, 1, 1, 1) : set_below(6);
            (0, 0, 1, 1, 0, 1, 1, 1) : set_below(5);
            (1, 0, 1, 1, 0, 1, 1, 1) : set_below(6);
            (0, 1, 1, 1, 0, 1, 1, 1) : set_below(6);
            (1, 1, 1, 1, 0, 1, 1, 1) : set_below(7);
            (0, 0, 0, 0, 1, 1, 1, 1) : set_below(4);
            (1, 0, 0, 0, 1, 1, 1, 1) : set_below(5);
            (0, 1, 0, 0, 1, 1, 1, 1) : set_below(5);
            (1, 1, 0, 0, 1, 1, 1, 1) : set_below(6);
            (0, 0, 1, 0, 1, 1, 1, 1) : set_below(5);
            (1, 0, 1, 0, 1, 1, 1, 1) : set_below(6);
            (0, 1, 1, 0, 1, 1, 1, 1) : set_below(6);
            (1, 1, 1, 0, 1, 1, 1, 1) : set_below(7);
            (0, 0, 0, 1, 1, 1, 1, 1) : set_below(5);
            (1, 0, 0, 1, 1, 1, 1, 1) : set_below(6);
            (0, 1, 0, 1, 1, 1, 1, 1) : set_below(6);
            (1, 1, 0, 1, 1, 1, 1, 1) : set_below(7);
            (0, 0, 1, 1, 1, 1, 1, 1) : set_below(6);
            (1, 0, 1, 1, 1, 1, 1, 1) : set_below(7);
            (0, 1, 1, 1, 1, 1, 1, 1) : set_below(7);
            (1, 1, 1, 1, 1, 1, 1, 1) : set_below(8);
        }
        size = 256;
    }

    apply {
        meta.window_head = advance_head.execute(0);
        b0 = rank_slot_0.execute(0);
        b1 = rank_slot_1.execute(0);
        b2 = rank_slot_2.execute(0);
        b3 = rank_slot_3.execute(0);
        b4 = rank_slot_4.execute(0);
        b5 = rank_slot_5.execute(0);
        b6 = rank_slot_6.execute(0);
        b7 = rank_slot_7.execute(0);
        count_below.apply();
    }
}

/* ---------------------------------------------------------------------------------
 * Queue depths where AIFO and PACKS decide: the ingress. Tofino shows a queue's depth
 * only to the egress, and the ingress and the egress cannot share a register, so the
 * egress records each (port, queue)'s depth at dequeue (MpEgress) and queue-depth workers
 * carry them here (DepthWorker): these registers hold a copy, as fresh as the workers'
 * period. Depths are in 80-byte cells.
 *
 * What a packet needs of them is small: AIFO the one FIFO's depth (queue 0), PACKS the
 * port's total (the saturating sum of the 8 depths) and, per queue, whether it has room
 * (depth < the configured depth). So a returning worker stores the 8 depths and their
 * total (summed by the egress, once per worker, not once per packet), and each queue's
 * RegisterAction answers the room question itself in its stateful ALU: the packet carries
 * 8 one-bit flags and one 16-bit total, not 8 depths and a sum tree.
 *
 * Each register's store and read are two actions of one table (keyed on the worker
 * verdict and the mode), so that they share the stage of the register's stateful ALU;
 * every access uses meta.depth_port, the packet's egress port or the port a worker
 * reports on. */

struct queue_room_t {
    bit<1> q0; bit<1> q1; bit<1> q2; bit<1> q3;
    bit<1> q4; bit<1> q5; bit<1> q6; bit<1> q7;
}

#define DEPTH_STORE_ENTRIES(ACTION)                                                   \
            (WORKER_STORE, SCHED_FIFO) : ACTION;                                      \
            (WORKER_STORE, SCHED_STRICT) : ACTION;                                    \
            (WORKER_STORE, SCHED_SPPIFO) : ACTION;                                    \
            (WORKER_STORE, SCHED_AIFO) : ACTION;                                      \
            (WORKER_STORE, SCHED_PACKS) : ACTION;

#define INGRESS_DEPTH(Q)                                                             \
    Register<cells_t, PortId_t>(512, 0) ingress_depth_q##Q;                           \
    RegisterAction<cells_t, PortId_t, bit<1>>(ingress_depth_q##Q) has_room_q##Q = {   \
        void apply(inout cells_t depth, out bit<1> has_room) {                        \
            has_room = 0;                                                             \
            if (depth < meta.queue_depth) {                                           \
                has_room = 1;                                                         \
            }                                                                         \
        }                                                                             \
    };                                                                                \
    RegisterAction<cells_t, PortId_t, cells_t>(ingress_depth_q##Q) store_depth_q##Q = { \
        void apply(inout cells_t depth) {                                             \
            depth = hdr.depth_report.depth_q##Q;                                      \
        }                                                                             \
    };                                                                                \
    action room_q##Q() {                                                              \
        room.q##Q = has_room_q##Q.execute(meta.depth_port);                           \
    }                                                                                 \
    action store_q##Q() {                                                             \
        store_depth_q##Q.execute(meta.depth_port);                                    \
    }                                                                                 \
    table depth_q##Q {                                                                \
        key = { meta.worker : exact; meta.sched_mode : exact; }                       \
        actions = { room_q##Q; store_q##Q; @defaultonly NoAction; }                   \
        const default_action = NoAction();                                            \
        const entries = {                                                             \
            DEPTH_STORE_ENTRIES(store_q##Q())                                         \
            (WORKER_NONE, SCHED_PACKS) : room_q##Q();                                 \
        }                                                                             \
        size = 8;                                                                     \
    }

control IngressDepths(inout tna_headers_t hdr, inout tna_metadata_t meta,
                      out cells_t used, out queue_room_t room) {
    INGRESS_DEPTH(0)
    INGRESS_DEPTH(1)
    INGRESS_DEPTH(2)
    INGRESS_DEPTH(3)
    INGRESS_DEPTH(4)
    INGRESS_DEPTH(5)
    INGRESS_DEPTH(6)
    INGRESS_DEPTH(7)

    /* What the port holds, as AIFO or PACKS counts it: PACKS the total of its 8 queues
     * (saturating), AIFO its one FIFO, queue 0. A worker stores the one the configured
     * mode needs, so that one register and one 16-bit read serve both. */
    Register<cells_t, PortId_t>(512, 0) ingress_depth_used;
    RegisterAction<cells_t, PortId_t, cells_t>(ingress_depth_used) read_used = {
        void apply(inout cells_t held, out cells_t rv) {
            rv = held;
        }
    };
    RegisterAction<cells_t, PortId_t, cells_t>(ingress_depth_used) store_total = {
        void apply(inout cells_t held) {
            held = hdr.depth_report.total;
        }
    };
    RegisterAction<cells_t, PortId_t, cells_t>(ingress_depth_used) store_q0_as_used = {
        void apply(inout cells_t held) {
            held = hdr.depth_report.depth_q0;
        }
    };
    action read_used_depth() {
        used = read_used.execute(meta.depth_port);
    }
    action store_total_depth() {
        store_total.execute(meta.depth_port);
    }
    action store_q0_depth() {
        store_q0_as_used.execute(meta.depth_port);
    }
    table depth_used {
        key = { meta.worker : exact; meta.sched_mode : exact; }
        actions = { read_used_depth; store_total_depth; store_q0_depth; @defaultonly NoAction; }
        const default_action = NoAction();
        const entries = {
            (WORKER_STORE, SCHED_FIFO) : store_total_depth();
            (WORKER_STORE, SCHED_STRICT) : store_total_depth();
            (WORKER_STORE, SCHED_SPPIFO) : store_total_depth();
            (WORKER_STORE, SCHED_AIFO) : store_q0_depth();
            (WORKER_STORE, SCHED_PACKS) : store_total_depth();
            (WORKER_NONE, SCHED_AIFO) : read_used_depth();
            (WORKER_NONE, SCHED_PACKS) : read_used_depth();
        }
        size = 8;
    }

    apply {
        depth_q0.apply();
        depth_q1.apply();
        depth_q2.apply();
        depth_q3.apply();
        depth_q4.apply();
        depth_q5.apply();
        depth_q6.apply();
        depth_q7.apply();
        depth_used.apply();
    }
}

/* ---------------------------------------------------------------------------------
 * Stage 5: queue selection. AIFO's and PACKS's admission rules are, in the v1model
 * program, products of the window count, k, W, the capacity and the free buffer. Here
 * the control plane evaluates them for every count and every number of free cells and
 * installs the answers in a table keyed on (mode, free cells as a range, count): which
 * queues' shares admit the packet (p4src/tofino.py computes the entries; tests check them
 * against the reference model). The data plane subtracts once (the free cells) and looks
 * up twice (the admission mask, then the queue). */
control Scheduling(inout tna_headers_t hdr, inout tna_metadata_t meta,
                   in ingress_intrinsic_metadata_t ig_intr_md,
                   inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                   inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    /* SP-PIFO's bounds: declared here, not in a control of their own, so that each pass
     * is one branch of the if-else below (a nested condition would cost a stage). */
    SPPIFO_BOUND(0)
    SPPIFO_BOUND(1)
    SPPIFO_BOUND(2)
    SPPIFO_BOUND(3)
    SPPIFO_BOUND(4)
    SPPIFO_BOUND(5)
    SPPIFO_BOUND(6)

    /* The highest-priority queue: its bound becomes the rank either way; the cost of a
     * push-down (bound - rank) comes back, 0 when the rank was not below the bound. */
    Register<rank_t, bit<1>>(1, 0) sppifo_bound_q7;
    RegisterAction<rank_t, bit<1>, rank_t>(sppifo_bound_q7) push_top = {
        void apply(inout rank_t bound, out rank_t cost) {
            if (meta.rank >= bound) {
                cost = 0;
            } else {
                cost = bound - meta.rank;
            }
            bound = meta.rank;
        }
    };

    RankWindow() rank_window;
    IngressDepths() ingress_depths;
    Counter<bit<64>, bit<3>>(NUM_QUEUES, CounterType_t.PACKETS_AND_BYTES) queue_enqueues;

    cells_t used;      /* AIFO: queue 0's depth; PACKS: the port's total */
    cells_t capacity;  /* PACKS: 8 queues' depth */
    cells_t free;
    queue_room_t room; /* PACKS: which queues have room */
    bit<8> admit;      /* AIFO/PACKS: bit q set: queue q's share admits the packet */
    bit<8> below;      /* AIFO/PACKS: window ranks below the packet's */

    /* Free cells: capacity minus what is held, 0 when full (saturating). Queue depths
     * are at most 8191 cells for PACKS, so 8 of them fit in 16 bits. */
    action aifo_free() {
        free = meta.queue_depth |-| used;
    }

    action packs_capacity() {
        capacity = meta.queue_depth << 3;
    }

    action packs_free() {
        free = capacity |-| used;
    }

    action set_mode(bit<3> mode, cells_t queue_depth) {
        meta.sched_mode = mode;
        meta.queue_depth = queue_depth;
    }

    table sched_mode {
        actions = { set_mode; }
        default_action = set_mode(SCHED_FIFO, 64);
        size = 1;
    }

    action set_queue(bit<3> queue) {
        meta.queue = queue;
    }

    table rank_to_queue {
        key = { meta.rank : range @name("rank"); }
        actions = { set_queue; }
        default_action = set_queue(0);
        size = 64;
    }

    /* Which queues' shares admit a packet with `below` window ranks under its own, for
     * the mode and the free cells: the control plane evaluates AIFO's or PACKS's rule
     * for every free value and every count (p4src/tofino.py) and installs, per count,
     * the ranges of free cells with the same answer. Admitting nothing needs no entry.
     * With `below` in the key the data plane does not compare at all: no threshold
     * arithmetic between the window's sum and the queue choice. */
    action set_admit(bit<8> admit_mask) {
        admit = admit_mask;
    }

    table admission_thresholds {
        key = {
            meta.sched_mode : exact @name("mode");
            free            : range @name("free");
            below           : exact @name("below");
        }
        actions = { set_admit; }
        default_action = set_admit(0);  /* admits nothing */
        size = 1024;
    }

    action choose(bit<3> queue) {
        meta.queue = queue;
    }
    /* AIFO's and PACKS's drops go to their own field: a write to meta.drop_reason here
     * would have to wait for every table whose condition reads it (SP-PIFO's chain). */
    action drop_full() {
        meta.sched_drop = DROP_QUEUE_FULL;
    }
    action drop_refused() {
        meta.sched_drop = DROP_ADMISSION;
    }

    /* The decision, as one priority-ordered ternary table (constant entries: the first
     * that matches wins). AIFO: a full queue is a tail drop, else queue 0 if its share
     * admits. PACKS: the highest-priority queue with room whose share admits the packet;
     * none: a full buffer's tail drop, else an admission drop. */
    table choose_queue {
        key = {
            meta.sched_mode : exact;
            free            : ternary;
            admit           : ternary;
            room.q7 : ternary; room.q6 : ternary; room.q5 : ternary; room.q4 : ternary;
            room.q3 : ternary; room.q2 : ternary; room.q1 : ternary; room.q0 : ternary;
        }
        actions = { choose; drop_full; drop_refused; }
        default_action = drop_refused();
        const entries = {
            (SCHED_AIFO, 0, _, _, _, _, _, _, _, _, _) : drop_full();
            (SCHED_AIFO, _, 0x01 &&& 0x01, _, _, _, _, _, _, _, _) : choose(0);
            (SCHED_PACKS, _, 0x80 &&& 0x80, 1, _, _, _, _, _, _, _) : choose(7);
            (SCHED_PACKS, _, 0x40 &&& 0x40, _, 1, _, _, _, _, _, _) : choose(6);
            (SCHED_PACKS, _, 0x20 &&& 0x20, _, _, 1, _, _, _, _, _) : choose(5);
            (SCHED_PACKS, _, 0x10 &&& 0x10, _, _, _, 1, _, _, _, _) : choose(4);
            (SCHED_PACKS, _, 0x08 &&& 0x08, _, _, _, _, 1, _, _, _) : choose(3);
            (SCHED_PACKS, _, 0x04 &&& 0x04, _, _, _, _, _, 1, _, _) : choose(2);
            (SCHED_PACKS, _, 0x02 &&& 0x02, _, _, _, _, _, _, 1, _) : choose(1);
            (SCHED_PACKS, _, 0x01 &&& 0x01, _, _, _, _, _, _, _, 1) : choose(0);
            (SCHED_PACKS, 0, _, _, _, _, _, _, _, _, _) : drop_full();
        }
        size = 16;
    }

    apply {
        sched_mode.apply();
        packs_capacity();  /* early: it needs only the mode's depth */
        /* One if-else over the modes, each branch's whole condition in one gateway: their
         * tables are exclusive, so bf-p4c may lay SP-PIFO's 8-stage chain and AIFO's/PACKS's
         * window side by side. */
        if (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE &&
                meta.sched_mode == SCHED_SPPIFO && ig_intr_md.resubmit_flag == 0) {
                bit<1> admitted;
                admitted = push_up_q0.execute(0);
                if (admitted == 1) { meta.queue = 0; } else {
                admitted = push_up_q1.execute(0);
                if (admitted == 1) { meta.queue = 1; } else {
                admitted = push_up_q2.execute(0);
                if (admitted == 1) { meta.queue = 2; } else {
                admitted = push_up_q3.execute(0);
                if (admitted == 1) { meta.queue = 3; } else {
                admitted = push_up_q4.execute(0);
                if (admitted == 1) { meta.queue = 4; } else {
                admitted = push_up_q5.execute(0);
                if (admitted == 1) { meta.queue = 5; } else {
                admitted = push_up_q6.execute(0);
                if (admitted == 1) { meta.queue = 6; } else {
                    meta.queue = 7;
                    rank_t cost = push_top.execute(0);
                    if (cost != 0) {
                        /* Push-down: the packet comes back with the cost and is queued then. */
                        meta.push_down.setValid();
                        meta.push_down.cost = cost;
                        meta.push_down._pad = 0;
                        ig_dprsr_md.resubmit_type = RESUBMIT_PUSH_DOWN;
                        meta.resubmit = 1;
                    }
                }}}}}}}
        } else if (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE &&
                   meta.sched_mode == SCHED_SPPIFO) {
                /* Second pass: every other bound falls by the cost (not below 0); the packet
                 * goes to the highest-priority queue, as decided in the first pass. */
                push_down_q0.execute(0);
                push_down_q1.execute(0);
                push_down_q2.execute(0);
                push_down_q3.execute(0);
                push_down_q4.execute(0);
                push_down_q5.execute(0);
                push_down_q6.execute(0);
                meta.queue = 7;
        } else if (meta.worker == WORKER_STORE ||
                   (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE &&
                    (meta.sched_mode == SCHED_AIFO || meta.sched_mode == SCHED_PACKS))) {
            /* A returning worker stores its report; AIFO and PACKS read what it stored. */
            if (meta.worker == WORKER_NONE) {
                rank_window.apply(meta, below);
            }
            ingress_depths.apply(hdr, meta, used, room);
            if (meta.worker == WORKER_NONE) {
                if (meta.sched_mode == SCHED_AIFO) {
                    aifo_free();
                } else {
                    packs_free();
                }
                admission_thresholds.apply();
                choose_queue.apply();
            }
        } else if (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE &&
                   meta.sched_mode == SCHED_STRICT) {
            rank_to_queue.apply();
        }
        if (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE) {
            /* FIFO: queue 0, as the parser set it. */
            ig_tm_md.qid = (QueueId_t) meta.queue;
            if (meta.sched_drop == DROP_NONE && meta.resubmit == 0) {
                queue_enqueues.count(meta.queue);
            }
        }
    }
}

#endif
