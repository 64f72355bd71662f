/* MASQUE/PIFO dataplane for Tofino (TNA, Tofino 1): the v1model program's forwarded mode
 * of QUIC-aware proxying, IPv4 routing, per-flow ranks and FIFO / strict priority /
 * SP-PIFO / AIFO / PACKS queue selection, written for a pipeline of match-action stages
 * with stateful ALUs. Shares its wire headers and constants with p4src/masque_pifo.p4
 * (p4src/include/). See docs/tofino.md: what maps to what, what differs and why, and what
 * has been checked. */
#include <core.p4>
#include <tna.p4>

#include "include/tna_defines.p4"
#include "include/tna_headers.p4"
#include "include/tna_parser.p4"
#include "include/tna_controls.p4"
#include "include/tna_scheduling.p4"
#include "include/tna_egress.p4"

control MpIngress(inout tna_headers_t hdr, inout tna_metadata_t meta,
                  in ingress_intrinsic_metadata_t ig_intr_md,
                  in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                  inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                  inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    Counter<bit<32>, bit<8>>(NUM_DROP_REASONS, CounterType_t.PACKETS) drops;
    Sanity() sanity;
    Ranking() ranking;
    QuicForwarding() quic_forwarding;
    Forwarding() forwarding;
    DepthWorker() depth_worker;
    Scheduling() scheduling;

    apply {
        /* The metadata's initial values are set by the parser (MpIngressParser), where
         * they cost no stage; the bridged header is written once, at the end. */
        if (hdr.packet_out.isValid()) {
            /* PacketOut from the controller: send as told, highest priority (the
             * deparser does not emit the PacketOut header). */
            ig_tm_md.ucast_egress_port = hdr.packet_out.egress_port;
            ig_tm_md.qid = (QueueId_t) QUEUE_HIGHEST;
            meta.queue = QUEUE_HIGHEST;
        } else {
            if (hdr.depth_report.isValid()) {
                depth_worker.apply(hdr, meta, ig_intr_md, ig_tm_md);
            } else {
                sanity.apply(hdr, meta, ig_prsr_md);
                /* Sanity's checks again, on the fields themselves rather than on the drop
                 * reason it records: a gateway in the same stage as the first lookups,
                 * not one stage after Sanity's. */
                if (ig_prsr_md.parser_err == PARSER_ERROR_OK && hdr.ipv4.isValid() &&
                        meta.ipv4_bad_ihl == 0 && !meta.ipv4_checksum_err &&
                        hdr.ipv4.ttl > 1) {
                    ranking.apply(hdr, meta);
                    quic_forwarding.apply(hdr, meta);
                    if (meta.quic_forwarded == 1) {
                        meta.rank = meta.forward_rank;
                    }
                    forwarding.apply(hdr, meta, ig_tm_md);
                }
            }
            scheduling.apply(hdr, meta, ig_intr_md, ig_dprsr_md, ig_tm_md);

            if (meta.worker == WORKER_STORE) {
                ig_dprsr_md.drop_ctl = 1;  /* its report is stored: the worker ends here */
            } else if (meta.drop_reason != DROP_NONE) {
                ig_dprsr_md.drop_ctl = 1;
                drops.count(meta.drop_reason);
            } else if (meta.sched_drop != DROP_NONE) {
                ig_dprsr_md.drop_ctl = 1;
                drops.count(meta.sched_drop);
            }
        }
        /* To the egress: what the packet is, and its queue (PacketOut: the highest). */
        hdr.bridged.setValid();
        hdr.bridged._pad = 0;
        hdr.bridged.queue = meta.queue;
        if (meta.worker == WORKER_SEND) {
            hdr.bridged.kind = BRIDGED_WORKER;
        } else {
            hdr.bridged.kind = BRIDGED_PACKET;
        }
    }
}

Pipeline(MpIngressParser(), MpIngress(), MpIngressDeparser(),
         MpEgressParser(), MpEgress(), MpEgressDeparser()) pipe;

Switch(pipe) main;
