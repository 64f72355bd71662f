/* The egress of the Tofino program: it sees each queue's depth, which the ingress cannot.
 * An ordinary packet records the depth its queue had when it left (per egress port and
 * queue); a queue-depth worker on its way through a loopback port copies the 8 recorded
 * depths of the port it reports on into its report, for the ingress to store. */
#ifndef MP_TNA_EGRESS_P4
#define MP_TNA_EGRESS_P4

#include "tna_headers.p4"

/* Each (port, queue) register's record and report are two actions of one table, so that
 * they share the stage of the register's stateful ALU; both index by meta.port. */
#define EGRESS_DEPTH(Q, STAGE)                                                            \
    Register<bit<32>, PortId_t>(512, 0) egress_depth_q##Q;                           \
    RegisterAction<bit<32>, PortId_t, cells_t>(egress_depth_q##Q) record_depth_q##Q = { \
        void apply(inout bit<32> depth) {                                             \
            if (eg_intr_md.deq_qdepth > (bit<19>) CELLS_MAX) {                         \
                depth = (bit<32>) CELLS_MAX;                                          \
            } else {                                                                  \
                depth = (bit<32>) eg_intr_md.deq_qdepth;                              \
            }                                                                         \
        }                                                                             \
    };                                                                                \
    RegisterAction<bit<32>, PortId_t, cells_t>(egress_depth_q##Q) report_depth_q##Q = { \
        void apply(inout bit<32> depth, out cells_t rv) {                             \
            rv = depth[15:0];                                                         \
        }                                                                             \
    };                                                                                \
    action record_q##Q() {                                                            \
        record_depth_q##Q.execute(meta.port);                                         \
    }                                                                                 \
    action report_q##Q() {                                                            \
        hdr.depth_report.depth_q##Q = report_depth_q##Q.execute(meta.port);           \
    }                                                                                 \
    @stage(STAGE)                                                                     \
    table depth_q##Q {                                                                \
        key = {                                                                       \
            hdr.depth_report.isValid() : exact;                                       \
            hdr.bridged.queue          : exact;                                       \
        }                                                                             \
        actions = { record_q##Q; report_q##Q; @defaultonly NoAction; }                \
        const default_action = NoAction();                                            \
        const entries = {                                                             \
            (false, Q) : record_q##Q();                                               \
            (true, 0) : report_q##Q();   /* a worker's queue is 0 (the parser's) */   \
        }                                                                             \
        size = 2;                                                                     \
    }

control MpEgress(inout tna_egress_headers_t hdr, inout tna_egress_metadata_t meta,
                 in egress_intrinsic_metadata_t eg_intr_md,
                 in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                 inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                 inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    EGRESS_DEPTH(0, 0)
    EGRESS_DEPTH(1, 0)
    EGRESS_DEPTH(2, 0)
    EGRESS_DEPTH(3, 0)
    EGRESS_DEPTH(4, 1)
    EGRESS_DEPTH(5, 1)
    EGRESS_DEPTH(6, 1)
    EGRESS_DEPTH(7, 1)

    /* The port's total, for PACKS: a saturating sum, one action per level of the tree
     * (an ALU takes one operation per operand per stage). */
    cells_t s01; cells_t s23; cells_t s45; cells_t s67;
    action sum_pairs() {
        s01 = hdr.depth_report.depth_q0 |+| hdr.depth_report.depth_q1;
        s23 = hdr.depth_report.depth_q2 |+| hdr.depth_report.depth_q3;
        s45 = hdr.depth_report.depth_q4 |+| hdr.depth_report.depth_q5;
        s67 = hdr.depth_report.depth_q6 |+| hdr.depth_report.depth_q7;
    }
    action sum_halves() {
        s01 = s01 |+| s23;
        s45 = s45 |+| s67;
    }
    action sum_all() {
        hdr.depth_report.total = s01 |+| s45;
    }

    apply {
        /* meta.port is set by the egress parser and the depth is saturated in the
         * stateful ALU itself, so that these tables (and their stateful ALUs) can sit in
         * stages 0 and 1, which the ingress leaves free of stateful ALUs: Tofino's
         * stages are shared by the ingress and the egress. */
        if (hdr.depth_report.isValid()) {
            hdr.depth_report.phase = WORKER_RETURNING;
        }
        depth_q0.apply();
        depth_q1.apply();
        depth_q2.apply();
        depth_q3.apply();
        depth_q4.apply();
        depth_q5.apply();
        depth_q6.apply();
        depth_q7.apply();
        if (hdr.depth_report.isValid()) {
            sum_pairs();
            sum_halves();
            sum_all();
        }
    }
}

#endif
