/* The egress of the Tofino program: it sees each queue's depth, which the ingress cannot.
 * An ordinary packet records the depth its queue had when it left (per egress port and
 * queue); a queue-depth worker on its way through a loopback port copies the 8 recorded
 * depths of the port it reports on into its report, for the ingress to store. */
#ifndef MP_TNA_EGRESS_P4
#define MP_TNA_EGRESS_P4

#include "tna_headers.p4"

#define EGRESS_DEPTH(Q)                                                              \
    Register<cells_t, PortId_t>(512, 0) egress_depth_q##Q;                            \
    RegisterAction<cells_t, PortId_t, cells_t>(egress_depth_q##Q) record_depth_q##Q = { \
        void apply(inout cells_t depth) {                                             \
            depth = meta.depth;                                                       \
        }                                                                             \
    };                                                                                \
    RegisterAction<cells_t, PortId_t, cells_t>(egress_depth_q##Q) report_depth_q##Q = { \
        void apply(inout cells_t depth, out cells_t rv) {                             \
            rv = depth;                                                               \
        }                                                                             \
    };

control MpEgress(inout tna_egress_headers_t hdr, inout tna_egress_metadata_t meta,
                 in egress_intrinsic_metadata_t eg_intr_md,
                 in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                 inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                 inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    EGRESS_DEPTH(0)
    EGRESS_DEPTH(1)
    EGRESS_DEPTH(2)
    EGRESS_DEPTH(3)
    EGRESS_DEPTH(4)
    EGRESS_DEPTH(5)
    EGRESS_DEPTH(6)
    EGRESS_DEPTH(7)

    apply {
        if (hdr.depth_report.isValid()) {
            PortId_t port = hdr.depth_report.port;
            hdr.depth_report.depth_q0 = report_depth_q0.execute(port);
            hdr.depth_report.depth_q1 = report_depth_q1.execute(port);
            hdr.depth_report.depth_q2 = report_depth_q2.execute(port);
            hdr.depth_report.depth_q3 = report_depth_q3.execute(port);
            hdr.depth_report.depth_q4 = report_depth_q4.execute(port);
            hdr.depth_report.depth_q5 = report_depth_q5.execute(port);
            hdr.depth_report.depth_q6 = report_depth_q6.execute(port);
            hdr.depth_report.depth_q7 = report_depth_q7.execute(port);
            hdr.depth_report.phase = WORKER_RETURNING;
        } else {
            /* deq_qdepth is 19 bits of cells; 16 bits hold 5.2 MB, more than a queue
             * AIFO or PACKS is configured with (at most 8191 cells). */
            if (eg_intr_md.deq_qdepth > CELLS_MAX) {
                meta.depth = 0xffff;
            } else {
                meta.depth = eg_intr_md.deq_qdepth[15:0];
            }
            PortId_t port = eg_intr_md.egress_port;
            if (hdr.bridged.queue == 0)      { record_depth_q0.execute(port); }
            else if (hdr.bridged.queue == 1) { record_depth_q1.execute(port); }
            else if (hdr.bridged.queue == 2) { record_depth_q2.execute(port); }
            else if (hdr.bridged.queue == 3) { record_depth_q3.execute(port); }
            else if (hdr.bridged.queue == 4) { record_depth_q4.execute(port); }
            else if (hdr.bridged.queue == 5) { record_depth_q5.execute(port); }
            else if (hdr.bridged.queue == 6) { record_depth_q6.execute(port); }
            else                             { record_depth_q7.execute(port); }
        }
    }
}

#endif
