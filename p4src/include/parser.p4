/* Parser, deparser and checksum controls. */
#ifndef MP_PARSER_P4
#define MP_PARSER_P4

#include <core.p4>
#include <v1model.p4>
#include "headers.p4"

parser MpParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                inout standard_metadata_t std_meta) {
    state start {
        transition select(std_meta.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
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

    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        transition select(hdr.udp.dst_port) {
            MP_FASTPATH_PORT: parse_shim;
            default: check_quic_room;
        }
    }

    /* Any other UDP datagram long enough may be QUIC: its first byte and an 8-byte DCID
     * are extracted (and emitted back unchanged unless a mapping rewrites the DCID). */
    state check_quic_room {
        transition select(hdr.udp.length >= QUIC_SHORT_MIN_UDP_LEN) {
            true: parse_quic;
            default: accept;
        }
    }

    state parse_quic {
        packet.extract(hdr.quic);
        transition accept;
    }

    state parse_shim {
        packet.extract(hdr.shim);
        transition accept;
    }
}

control MpVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid() && hdr.ipv4.ihl == 5,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn,
              hdr.ipv4.total_len, hdr.ipv4.identification, hdr.ipv4.flags,
              hdr.ipv4.frag_offset, hdr.ipv4.ttl, hdr.ipv4.protocol,
              hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

/* The IPv4 header checksum is always recomputed. The UDP checksum of a packet the fast
 * path rewrites is set to zero ("no checksum", allowed for UDP over IPv4 by RFC 768)
 * instead of being recomputed: the payload is QUIC, whose AEAD already protects it end
 * to end, and a recomputation would cost a pass over every payload byte. Packets the
 * switch only routes keep their UDP checksum, which routing does not change. */
control MpComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid() && hdr.ipv4.ihl == 5,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.dscp, hdr.ipv4.ecn,
              hdr.ipv4.total_len, hdr.ipv4.identification, hdr.ipv4.flags,
              hdr.ipv4.frag_offset, hdr.ipv4.ttl, hdr.ipv4.protocol,
              hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control MpDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.udp);
        packet.emit(hdr.shim);
        packet.emit(hdr.quic);
    }
}

#endif
