/* Parsers and deparsers of the Tofino program. The ingress parser accepts what the v1model
 * parser accepts (Ethernet, IPv4 without options, UDP, and for a UDP datagram long enough
 * the first QUIC byte and an 8-byte DCID), plus PacketOut from the CPU port, the push-down
 * metadata of a resubmitted packet, and queue-depth workers. */
#ifndef MP_TNA_PARSER_P4
#define MP_TNA_PARSER_P4

#include "tna_headers.p4"

parser MpIngressParser(packet_in pkt, out tna_headers_t hdr, out tna_metadata_t meta,
                       out ingress_intrinsic_metadata_t ig_intr_md) {
    Checksum() ipv4_checksum;
    /* The CPU's port differs between Tofino parts (PCIe: 192 on 2-pipe, 320 on 4-pipe
     * Tofino 1): the control plane names it. */
    @name("cpu_ports") value_set<PortId_t>(4) cpu_ports;

    state start {
        pkt.extract(ig_intr_md);
        meta.ipv4_bad_ihl = 0;
        meta.l4_src_port = 0;
        meta.l4_dst_port = 0;
        meta.drop_reason = DROP_NONE;
        meta.sched_drop = DROP_NONE;
        meta.worker = WORKER_NONE;
        meta.quic_forwarded = 0;
        meta.resubmit = 0;
        meta.queue = 0;
        transition select(ig_intr_md.resubmit_flag) {
            1: parse_resubmit;
            default: parse_port_metadata;
        }
    }

    /* A resubmitted packet carries SP-PIFO's push-down where new packets carry the
     * port metadata; the packet itself is the original one, parsed again. */
    state parse_resubmit {
        pkt.extract(meta.push_down);
        transition parse_ethernet;
    }

    state parse_port_metadata {
        pkt.advance(PORT_METADATA_SIZE);
        transition select(ig_intr_md.ingress_port) {
            cpu_ports: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        pkt.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_DEPTH_REPORT: parse_depth_report;
            default: accept;
        }
    }

    state parse_depth_report {
        pkt.extract(hdr.depth_report);
        transition accept;
    }

    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        ipv4_checksum.add(hdr.ipv4);
        /* The parser's checksum unit writes its error bit: verify() is true for a wrong
         * checksum, as Intel's switch.p4 reads it (tofino1_base.p4's comment says the
         * opposite). It is assigned once, as is: bf-p4c refuses a verify() result written
         * into a field that another parser write may also set. Sanity reads it only for
         * IPv4 packets, all of which pass here. */
        meta.ipv4_checksum_err = ipv4_checksum.verify();
        transition select(hdr.ipv4.ihl) {
            5: parse_ipv4_payload;
            default: mark_ipv4_bad_ihl;  /* options are not parsed: the packet is dropped */
        }
    }

    state mark_ipv4_bad_ihl {
        meta.ipv4_bad_ihl = 1;
        transition accept;
    }

    state parse_ipv4_payload {
        transition select(hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (0, IPPROTO_UDP): parse_udp;  /* only first fragments carry the UDP header */
            default: accept;
        }
    }

    /* A UDP datagram of QUIC_SHORT_MIN_UDP_LEN (17) bytes or more may be QUIC. The
     * parser's TCAM matches values under masks, not inequalities: lengths 0-15 and 16 are
     * the ones too short. */
    state parse_udp {
        pkt.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition select(hdr.udp.length) {
            0 &&& 0xfff0: accept;
            16: accept;
            default: parse_quic;
        }
    }

    state parse_quic {
        pkt.extract(hdr.quic);
        transition accept;
    }
}

/* The IPv4 checksum is recomputed for every IPv4 packet; the UDP checksum of a rewritten
 * packet is zeroed by the rewrite itself, as in the v1model program (MpComputeChecksum). */
control MpIngressDeparser(packet_out pkt, inout tna_headers_t hdr, in tna_metadata_t meta,
                          in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    Checksum() ipv4_checksum;
    /* Emitted only when the ingress set ig_dprsr_md.resubmit_type = RESUBMIT_PUSH_DOWN. */
    Resubmit(RESUBMIT_PUSH_DOWN) resubmit;

    apply {
        resubmit.emit(meta.push_down);
        if (hdr.ipv4.isValid()) {
            hdr.ipv4.hdr_checksum = ipv4_checksum.update({
                hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn,
                hdr.ipv4.total_len, hdr.ipv4.identification, hdr.ipv4.flags,
                hdr.ipv4.frag_offset, hdr.ipv4.ttl, hdr.ipv4.protocol,
                hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
        }
        pkt.emit(hdr.bridged);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.quic);
        pkt.emit(hdr.depth_report);
    }
}

parser MpEgressParser(packet_in pkt, out tna_egress_headers_t hdr,
                      out tna_egress_metadata_t meta,
                      out egress_intrinsic_metadata_t eg_intr_md) {
    state start {
        pkt.extract(eg_intr_md);
        pkt.extract(hdr.bridged);
        transition select_kind;
    }

    state select_kind {
        transition select(hdr.bridged.kind) {
            BRIDGED_WORKER: parse_worker;
            default: ordinary_packet;
        }
    }

    /* An ordinary packet leaves as the ingress deparsed it; its own port's depths. */
    state ordinary_packet {
        meta.port = eg_intr_md.egress_port;
        transition accept;
    }

    state parse_worker {
        pkt.extract(hdr.ethernet);
        pkt.extract(hdr.depth_report);
        meta.port = hdr.depth_report.port;  /* the port it reports on */
        transition accept;
    }
}

/* The bridged header is not emitted: it ends at the egress. */
control MpEgressDeparser(packet_out pkt, inout tna_egress_headers_t hdr,
                         in tna_egress_metadata_t meta,
                         in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.depth_report);
    }
}

#endif
