/* Headers and metadata of the Tofino program. The wire headers (Ethernet, IPv4, UDP, the
 * QUIC short header with its 8-byte DCID, PacketOut) are the v1model program's, from
 * p4src/include/headers.p4; what is added here exists only inside the switch. */
#ifndef MP_TNA_HEADERS_P4
#define MP_TNA_HEADERS_P4

#include "../../include/headers.p4"
#include "tna_defines.p4"

/* Ingress to egress, in front of every packet the ingress sends to the traffic manager. */
header bridged_t {
    bit<8> kind;     /* BRIDGED_PACKET or BRIDGED_WORKER */
    bit<5> _pad;
    bit<3> queue;    /* the queue (qid) the ingress chose: the egress records its depth */
}

/* A queue-depth worker: generated on the switch, sent through the egress of a loopback
 * port, which fills in the depths of `port`'s 8 queues as the egress last saw them, and
 * back into the ingress, which stores them where AIFO and PACKS read them. */
header depth_report_t {
    bit<8>   phase;  /* WORKER_OUTBOUND or WORKER_RETURNING */
    bit<7>   _pad;
    PortId_t port;   /* the egress port whose queues are reported */
    cells_t  depth_q0;
    cells_t  depth_q1;
    cells_t  depth_q2;
    cells_t  depth_q3;
    cells_t  depth_q4;
    cells_t  depth_q5;
    cells_t  depth_q6;
    cells_t  depth_q7;
    cells_t  total;  /* the 8 depths' saturating sum, added by the egress */
}

/* SP-PIFO's push-down, carried by the resubmitted packet into its second ingress pass.
 * Tofino resubmits 64 bits of metadata with the packet. */
header push_down_t {
    rank_t   cost;
    bit<48>  _pad;
}

struct tna_headers_t {
    bridged_t      bridged;
    packet_out_t   packet_out;
    ethernet_t     ethernet;
    ipv4_t         ipv4;
    udp_t          udp;
    quic_short_t   quic;
    depth_report_t depth_report;
}

struct tna_metadata_t {
    push_down_t push_down;     /* valid in the second pass of a resubmitted packet */
    bit<1>    ipv4_bad_ihl;    /* set by the parser: IHL != 5 */
    bool      ipv4_checksum_err;
    l4_port_t l4_src_port;     /* UDP ports, 0 for non-UDP */
    l4_port_t l4_dst_port;
    rank_t    rank;
    rank_t    forward_rank;    /* the rank of the forwarded-mode mapping that matched */
    bit<1>    quic_forwarded;
    bit<8>    drop_reason;     /* DROP_* once a stage drops the packet, else DROP_NONE */
    bit<8>    sched_drop;      /* AIFO/PACKS: DROP_ADMISSION or DROP_QUEUE_FULL, else DROP_NONE */
    bit<2>    worker;          /* WORKER_NONE, WORKER_SEND or WORKER_STORE */
    bit<3>    sched_mode;
    cells_t   queue_depth;     /* AIFO/PACKS: each queue's depth, in cells */
    PortId_t  depth_port;      /* whose queue depths to read (egress port) or store (worker) */
    bit<3>    queue;
    bit<1>    resubmit;        /* SP-PIFO asked for a push-down pass */
    bit<8>    window_head;     /* AIFO/PACKS: the window's oldest slot, which this rank takes */
}

/* The egress parses only what it needs: the bridged header, and a worker's report. */
struct tna_egress_headers_t {
    bridged_t      bridged;
    ethernet_t     ethernet;
    depth_report_t depth_report;
}

struct tna_egress_metadata_t {
    PortId_t port;             /* whose depths to record (egress port) or report (worker) */
}

#endif
