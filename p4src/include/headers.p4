/* Headers and metadata of the MASQUE/PIFO dataplane. */
#ifndef MP_HEADERS_P4
#define MP_HEADERS_P4

#include "defines.p4"

@controller_header("packet_in")
header packet_in_t {
    port_t  ingress_port;
    bit<7>  _pad;
    bit<8>  reason;
}

@controller_header("packet_out")
header packet_out_t {
    port_t  egress_port;
    bit<7>  _pad;
}

header ethernet_t {
    mac_t   dst_addr;
    mac_t   src_addr;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

header udp_t {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<16>   length;
    bit<16>   checksum;
}

/* The fast-path shim, 8 bytes, between UDP and the inner (end-to-end encrypted) payload:
 *   version (8) | flags (8) | reserved (16) | flow id (32) */
header mp_shim_t {
    bit<8>    version;
    bit<8>    flags;
    bit<16>   reserved;
    flow_id_t flow_id;
}

/* The start of a QUIC packet: the first byte, and for a short header (header_form 0)
 * the destination connection ID, VCID_BYTES long. Long headers are parsed no further. */
header quic_short_t {
    bit<1>     header_form;
    bit<1>     fixed_bit;
    bit<6>     rest;        /* spin, reserved, key phase, packet number length */
    quic_cid_t dcid;
}

struct headers_t {
    packet_out_t packet_out;
    packet_in_t  packet_in;
    ethernet_t   ethernet;
    ipv4_t       ipv4;
    udp_t        udp;
    mp_shim_t    shim;
    quic_short_t quic;
}

struct metadata_t {
    bit<1>    ipv4_bad_ihl;  /* set by the parser: IHL != 5 */
    l4_port_t l4_src_port;   /* UDP ports, 0 for non-UDP: keys never read invalid headers */
    l4_port_t l4_dst_port;
    rank_t    rank;
    bit<3>    sched_mode;
    bit<7>    burst_pct;     /* AIFO/PACKS k, in percent */
    bit<16>   queue_depth;   /* AIFO/PACKS: packets per priority queue (the TM's depth) */
    bit<3>    queue;
    bit<1>    occupancy_counted; /* ingress counted it into queue_occupancy[queue] */
    bit<1>    routed;        /* the fast path already decided the egress port */
    bit<1>    quic_forwarded; /* forwarded mode rewrote it: the shim fast path is skipped */
    bit<8>    drop_reason;   /* DROP_* once a stage drops the packet, else DROP_NONE */
}

#endif
