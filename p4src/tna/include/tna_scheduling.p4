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

control SpPifo(inout tna_metadata_t meta, in ingress_intrinsic_metadata_t ig_intr_md,
               inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
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

    apply {
        if (ig_intr_md.resubmit_flag == 0) {
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
        } else {
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
        }
    }
}

/* ---------------------------------------------------------------------------------
 * AIFO's and PACKS's rank window: the last RANK_WINDOW ranks, unrolled into one register
 * per slot (a window in one register array would need RANK_WINDOW reads of it in one
 * pass). A ring pointer names the oldest slot. Each slot's RegisterAction says whether
 * its rank is below the packet's and, if it is the oldest, takes the packet's rank: the
 * packet is compared with the window before it, as in the v1model program. Tofino 1 has
 * 4 stateful ALUs per stage, so the 20 slots take 5 stages; the 20 answers are added in a
 * tree. */

#define RANK_SLOT(I)                                                                 \
    Register<rank_t, bit<1>>(1, 0) rank_window_##I;                                   \
    RegisterAction<rank_t, bit<1>, bit<8>>(rank_window_##I) rank_slot_##I = {          \
        void apply(inout rank_t slot, out bit<8> is_below) {                          \
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
    RANK_SLOT(8)
    RANK_SLOT(9)
    RANK_SLOT(10)
    RANK_SLOT(11)
    RANK_SLOT(12)
    RANK_SLOT(13)
    RANK_SLOT(14)
    RANK_SLOT(15)
    RANK_SLOT(16)
    RANK_SLOT(17)
    RANK_SLOT(18)
    RANK_SLOT(19)

    apply {
        meta.window_head = advance_head.execute(0);
        bit<8> b0 = rank_slot_0.execute(0);
        bit<8> b1 = rank_slot_1.execute(0);
        bit<8> b2 = rank_slot_2.execute(0);
        bit<8> b3 = rank_slot_3.execute(0);
        bit<8> b4 = rank_slot_4.execute(0);
        bit<8> b5 = rank_slot_5.execute(0);
        bit<8> b6 = rank_slot_6.execute(0);
        bit<8> b7 = rank_slot_7.execute(0);
        bit<8> b8 = rank_slot_8.execute(0);
        bit<8> b9 = rank_slot_9.execute(0);
        bit<8> b10 = rank_slot_10.execute(0);
        bit<8> b11 = rank_slot_11.execute(0);
        bit<8> b12 = rank_slot_12.execute(0);
        bit<8> b13 = rank_slot_13.execute(0);
        bit<8> b14 = rank_slot_14.execute(0);
        bit<8> b15 = rank_slot_15.execute(0);
        bit<8> b16 = rank_slot_16.execute(0);
        bit<8> b17 = rank_slot_17.execute(0);
        bit<8> b18 = rank_slot_18.execute(0);
        bit<8> b19 = rank_slot_19.execute(0);
        /* A two-operand ALU per instruction: add in a tree (5 levels). */
        bit<8> s0 = b0 + b1;   bit<8> s1 = b2 + b3;   bit<8> s2 = b4 + b5;
        bit<8> s3 = b6 + b7;   bit<8> s4 = b8 + b9;   bit<8> s5 = b10 + b11;
        bit<8> s6 = b12 + b13; bit<8> s7 = b14 + b15; bit<8> s8 = b16 + b17;
        bit<8> s9 = b18 + b19;
        bit<8> t0 = s0 + s1;   bit<8> t1 = s2 + s3;   bit<8> t2 = s4 + s5;
        bit<8> t3 = s6 + s7;   bit<8> t4 = s8 + s9;
        bit<8> u0 = t0 + t1;   bit<8> u1 = t2 + t3;
        bit<8> v0 = u0 + u1;
        below = v0 + t4;
    }
}

/* ---------------------------------------------------------------------------------
 * Queue depths where AIFO and PACKS decide: the ingress. Tofino shows a queue's depth
 * only to the egress, and the ingress and the egress cannot share a register, so the
 * egress records each (port, queue)'s depth at dequeue (MpEgress) and queue-depth workers
 * carry them here (DepthWorker): these registers hold a copy, as fresh as the workers'
 * period. Depths are in 80-byte cells. */

struct queue_depths_t {
    cells_t q0; cells_t q1; cells_t q2; cells_t q3;
    cells_t q4; cells_t q5; cells_t q6; cells_t q7;
}

const bit<2> DEPTHS_NONE = 0;
const bit<2> DEPTHS_READ_Q0 = 1;   /* AIFO: the one FIFO, queue 0 */
const bit<2> DEPTHS_READ_ALL = 2;  /* PACKS: all 8 queues */
const bit<2> DEPTHS_STORE = 3;     /* a returning worker's report */

#define INGRESS_DEPTH(Q)                                                             \
    Register<cells_t, PortId_t>(512, 0) ingress_depth_q##Q;                           \
    RegisterAction<cells_t, PortId_t, cells_t>(ingress_depth_q##Q) read_depth_q##Q = { \
        void apply(inout cells_t depth, out cells_t rv) {                             \
            rv = depth;                                                               \
        }                                                                             \
    };                                                                                \
    RegisterAction<cells_t, PortId_t, cells_t>(ingress_depth_q##Q) store_depth_q##Q = { \
        void apply(inout cells_t depth) {                                             \
            depth = hdr.depth_report.depth_q##Q;                                      \
        }                                                                             \
    };

control IngressDepths(in tna_headers_t hdr, in PortId_t port, in bit<2> op,
                      out queue_depths_t held) {
    INGRESS_DEPTH(0)
    INGRESS_DEPTH(1)
    INGRESS_DEPTH(2)
    INGRESS_DEPTH(3)
    INGRESS_DEPTH(4)
    INGRESS_DEPTH(5)
    INGRESS_DEPTH(6)
    INGRESS_DEPTH(7)

    apply {
        held.q0 = 0; held.q1 = 0; held.q2 = 0; held.q3 = 0;
        held.q4 = 0; held.q5 = 0; held.q6 = 0; held.q7 = 0;
        if (op == DEPTHS_STORE) {
            store_depth_q0.execute(hdr.depth_report.port);
            store_depth_q1.execute(hdr.depth_report.port);
            store_depth_q2.execute(hdr.depth_report.port);
            store_depth_q3.execute(hdr.depth_report.port);
            store_depth_q4.execute(hdr.depth_report.port);
            store_depth_q5.execute(hdr.depth_report.port);
            store_depth_q6.execute(hdr.depth_report.port);
            store_depth_q7.execute(hdr.depth_report.port);
        } else if (op != DEPTHS_NONE) {
            held.q0 = read_depth_q0.execute(port);
            if (op == DEPTHS_READ_ALL) {
                held.q1 = read_depth_q1.execute(port);
                held.q2 = read_depth_q2.execute(port);
                held.q3 = read_depth_q3.execute(port);
                held.q4 = read_depth_q4.execute(port);
                held.q5 = read_depth_q5.execute(port);
                held.q6 = read_depth_q6.execute(port);
                held.q7 = read_depth_q7.execute(port);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------
 * Stage 5: queue selection. AIFO's and PACKS's admission rules are, in the v1model
 * program, products of the window count, k, W, the capacity and the free buffer. Here
 * the control plane turns them into a range table over the free cells: for each mode
 * and each range of free cells, the number of window ranks below the packet that each
 * queue still admits (p4src/tofino.py computes the entries; tests check them against the
 * reference model for every count and free value). The data plane only subtracts and
 * compares. */
control Scheduling(inout tna_headers_t hdr, inout tna_metadata_t meta,
                   in ingress_intrinsic_metadata_t ig_intr_md,
                   inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                   inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    SpPifo() sppifo;
    RankWindow() rank_window;
    IngressDepths() ingress_depths;
    Counter<bit<64>, bit<3>>(NUM_QUEUES, CounterType_t.PACKETS_AND_BYTES) queue_enqueues;

    bit<8> t_q0; bit<8> t_q1; bit<8> t_q2; bit<8> t_q3;
    bit<8> t_q4; bit<8> t_q5; bit<8> t_q6; bit<8> t_q7;
    cells_t free;
    queue_depths_t held;
    /* PACKS's buffer occupancy, summed as a tree: Tofino's ALUs take one operation per
     * operand per stage, so each level of the sum is its own action (its own stage). */
    cells_t h01; cells_t h23; cells_t h45; cells_t h67;
    cells_t h03; cells_t h47; cells_t used; cells_t capacity;

    action packs_sum_pairs() {
        h01 = held.q0 |+| held.q1;
        h23 = held.q2 |+| held.q3;
        h45 = held.q4 |+| held.q5;
        h67 = held.q6 |+| held.q7;
        capacity = meta.queue_depth << 3;
    }

    action packs_sum_halves() {
        h03 = h01 |+| h23;
        h47 = h45 |+| h67;
    }

    action packs_sum_all() {
        used = h03 |+| h47;
    }

    /* Free cells: capacity minus what the port's queues hold, 0 when full (saturating).
     * Queue depths are at most 8191 cells, so 8 of them fit in 16 bits. */
    action packs_free() {
        free = capacity |-| used;
    }

    action aifo_free() {
        free = meta.queue_depth |-| held.q0;
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

    /* Queue q admits a packet with `below` window ranks under its own when
     * below < t_qq. AIFO uses t_q0 only (its FIFO is queue 0). */
    action set_thresholds(bit<8> t_7, bit<8> t_6, bit<8> t_5, bit<8> t_4,
                          bit<8> t_3, bit<8> t_2, bit<8> t_1, bit<8> t_0) {
        t_q7 = t_7; t_q6 = t_6; t_q5 = t_5; t_q4 = t_4;
        t_q3 = t_3; t_q2 = t_2; t_q1 = t_1; t_q0 = t_0;
    }

    table admission_thresholds {
        key = {
            meta.sched_mode : exact @name("mode");
            free            : range @name("free");
        }
        actions = { set_thresholds; }
        default_action = set_thresholds(0, 0, 0, 0, 0, 0, 0, 0);  /* admits nothing */
        size = 1024;
    }

    apply {
        bit<2> depth_op = DEPTHS_NONE;
        if (meta.worker == WORKER_STORE) {
            depth_op = DEPTHS_STORE;
        } else if (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE) {
            sched_mode.apply();
            if (meta.sched_mode == SCHED_AIFO) {
                depth_op = DEPTHS_READ_Q0;
            } else if (meta.sched_mode == SCHED_PACKS) {
                depth_op = DEPTHS_READ_ALL;
            }
        }
        ingress_depths.apply(hdr, ig_tm_md.ucast_egress_port, depth_op, held);

        if (meta.worker == WORKER_NONE && meta.drop_reason == DROP_NONE) {
            if (meta.sched_mode == SCHED_STRICT) {
                rank_to_queue.apply();
            } else if (meta.sched_mode == SCHED_SPPIFO) {
                sppifo.apply(meta, ig_intr_md, ig_dprsr_md);
            } else if (meta.sched_mode == SCHED_AIFO || meta.sched_mode == SCHED_PACKS) {
                bit<8> below;
                rank_window.apply(meta, below);
                if (meta.sched_mode == SCHED_AIFO) {
                    aifo_free();
                } else {
                    packs_sum_pairs();
                    packs_sum_halves();
                    packs_sum_all();
                    packs_free();
                }
                admission_thresholds.apply();
                if (meta.sched_mode == SCHED_AIFO) {
                    bit<8> pass_0 = t_q0 |-| below;
                    if (free == 0) {
                        meta.drop_reason = DROP_QUEUE_FULL;
                    } else if (pass_0 != 0) {
                        meta.queue = 0;
                    } else {
                        meta.drop_reason = DROP_ADMISSION;
                    }
                } else {
                    /* The highest-priority queue with room whose share admits the
                     * packet; none: a full buffer's tail drop or an admission drop. */
                    bit<8> pass_7 = t_q7 |-| below; cells_t room_7 = meta.queue_depth |-| held.q7;
                    bit<8> pass_6 = t_q6 |-| below; cells_t room_6 = meta.queue_depth |-| held.q6;
                    bit<8> pass_5 = t_q5 |-| below; cells_t room_5 = meta.queue_depth |-| held.q5;
                    bit<8> pass_4 = t_q4 |-| below; cells_t room_4 = meta.queue_depth |-| held.q4;
                    bit<8> pass_3 = t_q3 |-| below; cells_t room_3 = meta.queue_depth |-| held.q3;
                    bit<8> pass_2 = t_q2 |-| below; cells_t room_2 = meta.queue_depth |-| held.q2;
                    bit<8> pass_1 = t_q1 |-| below; cells_t room_1 = meta.queue_depth |-| held.q1;
                    bit<8> pass_0 = t_q0 |-| below; cells_t room_0 = meta.queue_depth |-| held.q0;
                    if (room_7 != 0 && pass_7 != 0)      { meta.queue = 7; }
                    else if (room_6 != 0 && pass_6 != 0) { meta.queue = 6; }
                    else if (room_5 != 0 && pass_5 != 0) { meta.queue = 5; }
                    else if (room_4 != 0 && pass_4 != 0) { meta.queue = 4; }
                    else if (room_3 != 0 && pass_3 != 0) { meta.queue = 3; }
                    else if (room_2 != 0 && pass_2 != 0) { meta.queue = 2; }
                    else if (room_1 != 0 && pass_1 != 0) { meta.queue = 1; }
                    else if (room_0 != 0 && pass_0 != 0) { meta.queue = 0; }
                    else if (free == 0) { meta.drop_reason = DROP_QUEUE_FULL; }
                    else { meta.drop_reason = DROP_ADMISSION; }
                }
            } else {
                meta.queue = 0;
            }
            if (meta.drop_reason == DROP_NONE) {
                ig_tm_md.qid = (QueueId_t) meta.queue;
                hdr.bridged.queue = meta.queue;
                if (meta.resubmit == 0) {
                    queue_enqueues.count(meta.queue);
                }
            }
        }
    }
}

#endif
