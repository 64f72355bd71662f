/* MASQUE/PIFO dataplane for v1model (BMv2 simple_switch_grpc and the built-in target):
 * forwarded mode of QUIC-aware proxying, the CONNECT-UDP shim fast path, IPv4 routing,
 * per-flow ranks and FIFO / strict priority / SP-PIFO / AIFO / PACKS queue selection.
 * See docs/dataplane.md. */
#include <core.p4>
#include <v1model.p4>

#include "include/defines.p4"
#include "include/headers.p4"
#include "include/parser.p4"
#include "include/controls.p4"

control MpIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t std_meta) {
    counter(NUM_DROP_REASONS, CounterType.packets) drops;
    Sanity() sanity;
    Ranking() ranking;
    QuicForwarding() quic_forwarding;
    FastPath() fast_path;
    Forwarding() forwarding;
    Scheduling() scheduling;

    apply {
        if (hdr.packet_out.isValid()) {
            /* PacketOut from the controller: send as told, highest priority. */
            std_meta.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
            std_meta.priority = QUEUE_HIGHEST;
            exit;
        }
        meta.drop_reason = DROP_NONE;
        sanity.apply(hdr, meta, std_meta);
        if (meta.drop_reason == DROP_NONE) {
            ranking.apply(hdr, meta);
            quic_forwarding.apply(hdr, meta, std_meta);
            if (meta.quic_forwarded == 0) {
                fast_path.apply(hdr, meta, std_meta);
            }
        }
        if (meta.drop_reason == DROP_NONE && meta.routed == 0) {
            forwarding.apply(hdr, meta, std_meta);
        }
        if (meta.drop_reason == DROP_NONE) {
            scheduling.apply(hdr, meta, std_meta);
        }
        if (meta.drop_reason != DROP_NONE) {
            drops.count((bit<32>) meta.drop_reason);
        }
    }
}

control MpEgress(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    QueueAccounting() queue_accounting;

    apply {
        queue_accounting.apply(meta);
    }
}

V1Switch(MpParser(), MpVerifyChecksum(), MpIngress(), MpEgress(),
         MpComputeChecksum(), MpDeparser()) main;
