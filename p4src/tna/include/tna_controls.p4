/* Ingress stages of the Tofino program before scheduling: the v1model program's Sanity,
 * Ranking, QuicForwarding and Forwarding with the same tables, keys, actions and sizes, in
 * TNA's idiom (a stage records why it drops; the ingress sets drop_ctl once), and the
 * queue-depth workers' entry point. */
#ifndef MP_TNA_CONTROLS_P4
#define MP_TNA_CONTROLS_P4

#include "tna_headers.p4"

/* Stage 1: drop what cannot be processed, recording why. A parser error reaches this
 * stage because the program reads parser_err. */
control Sanity(in tna_headers_t hdr, inout tna_metadata_t meta,
               in ingress_intrinsic_metadata_from_parser_t ig_prsr_md) {
    apply {
        if (ig_prsr_md.parser_err != PARSER_ERROR_OK) {
            meta.drop_reason = DROP_PARSER_ERROR;
        } else if (!hdr.ipv4.isValid()) {
            meta.drop_reason = DROP_NOT_IPV4;
        } else if (meta.ipv4_bad_ihl == 1) {
            meta.drop_reason = DROP_IPV4_OPTIONS;
        } else if (meta.ipv4_checksum_err) {
            meta.drop_reason = DROP_IPV4_CHECKSUM;
        } else if (hdr.ipv4.ttl <= 1) {
            meta.drop_reason = DROP_TTL_EXPIRED;
        }
    }
}

/* Stage 2: a rank per flow (TCAM), matched on the packet as it arrived; DSCP is a
 * per-stream tag. */
control Ranking(in tna_headers_t hdr, inout tna_metadata_t meta) {
    action set_rank(rank_t rank) {
        meta.rank = rank;
    }

    table flow_rank {
        key = {
            hdr.ipv4.src_addr : ternary @name("src_addr");
            hdr.ipv4.dst_addr : ternary @name("dst_addr");
            meta.l4_src_port  : ternary @name("src_port");
            meta.l4_dst_port  : ternary @name("dst_port");
            hdr.ipv4.dscp     : ternary @name("dscp");
        }
        actions = { set_rank; }
        default_action = set_rank(0);  /* the controller sets the configured default rank */
        size = 2048;
    }

    apply {
        flow_rank.apply();
    }
}

/* Stage 3: forwarded mode of QUIC-aware proxying (draft-ietf-masque-quic-proxy-06),
 * identity transform, as in the v1model program: exact match (SRAM, hashed) on the
 * 4-tuple and the 8-byte DCID; a hit rewrites addresses, ports and DCID and carries the
 * mapping's rank. The rank goes to meta.forward_rank, not meta.rank, so that this table
 * and flow_rank write different fields and can share a stage; the ingress merges them. */
control QuicForwarding(inout tna_headers_t hdr, inout tna_metadata_t meta) {
    DirectCounter<bit<64>>(CounterType_t.PACKETS_AND_BYTES) quic_forward_counter;
    Counter<bit<32>, bit<1>>(1, CounterType_t.PACKETS) quic_wrong_source;

    action forward(ipv4_addr_t src_addr, l4_port_t src_port, ipv4_addr_t dst_addr,
                   l4_port_t dst_port, quic_cid_t dcid, rank_t rank) {
        hdr.ipv4.src_addr = src_addr;
        hdr.ipv4.dst_addr = dst_addr;
        hdr.udp.src_port = src_port;
        hdr.udp.dst_port = dst_port;
        hdr.udp.checksum = 0;  /* see MpIngressDeparser */
        hdr.quic.dcid = dcid;
        meta.forward_rank = rank;
        meta.quic_forwarded = 1;
        quic_forward_counter.count();
    }

    table quic_forward {
        key = {
            hdr.ipv4.src_addr : exact @name("src_addr");
            hdr.ipv4.dst_addr : exact @name("dst_addr");
            hdr.udp.src_port  : exact @name("src_port");
            hdr.udp.dst_port  : exact @name("dst_port");
            hdr.quic.dcid     : exact @name("dcid");
        }
        actions = { forward; @defaultonly NoAction; }
        default_action = NoAction();
        counters = quic_forward_counter;
        size = 8192;
    }

    action dcid_mapped() { }

    /* Every mapped (proxy address, port, DCID), whoever its source: a miss above on a hit
     * here is a packet from the wrong 4-tuple. */
    table quic_dcids {
        key = {
            hdr.ipv4.dst_addr : exact @name("dst_addr");
            hdr.udp.dst_port  : exact @name("dst_port");
            hdr.quic.dcid     : exact @name("dcid");
        }
        actions = { dcid_mapped; @defaultonly NoAction; }
        default_action = NoAction();
        size = 8192;
    }

    apply {
        if (hdr.quic.isValid() && hdr.quic.header_form == 0) {
            if (!quic_forward.apply().hit) {
                if (quic_dcids.apply().hit) {
                    quic_wrong_source.count(0);
                }
            }
        }
    }
}

/* Stage 4: IPv4 longest-prefix routing with MAC rewrite and TTL decrement. */
control Forwarding(inout tna_headers_t hdr, inout tna_metadata_t meta,
                   inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    action route(PortId_t port, mac_t src_mac, mac_t dst_mac) {
        ig_tm_md.ucast_egress_port = port;
        meta.depth_port = port;
        hdr.ethernet.src_addr = src_mac;
        hdr.ethernet.dst_addr = dst_mac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    action no_route() {
        meta.drop_reason = DROP_NO_ROUTE;
    }

    table ipv4_lpm {
        key = { hdr.ipv4.dst_addr : lpm @name("dst_addr"); }
        actions = { route; no_route; }
        default_action = no_route();
        size = 1024;
    }

    apply {
        ipv4_lpm.apply();
    }
}

/* Queue-depth workers, first half. A worker is a frame the packet generator sends
 * (EtherType ETHERTYPE_DEPTH_REPORT); Tofino 1's generator writes its 6-byte header over
 * the first 6 bytes of the frame, so the low 16 bits of the destination MAC are the
 * generator's packet id, which the control plane maps to the egress port to report on.
 * Outbound, the worker goes to a loopback port, whose egress fills in the depths; back in
 * the ingress (WORKER_RETURNING, from that loopback port) the Scheduling stage stores
 * them and the worker ends. A worker from any other port, or unknown, is dropped. */
control DepthWorker(inout tna_headers_t hdr, inout tna_metadata_t meta,
                    in ingress_intrinsic_metadata_t ig_intr_md,
                    inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    action send_to_loopback(PortId_t loopback_port, PortId_t report_port) {
        ig_tm_md.ucast_egress_port = loopback_port;
        hdr.depth_report.port = report_port;
        meta.worker = WORKER_SEND;
    }

    action store_depths() {
        meta.worker = WORKER_STORE;
        meta.depth_port = hdr.depth_report.port;
    }

    action reject_worker() {
        meta.drop_reason = DROP_NOT_IPV4;
    }

    table depth_worker {
        key = {
            ig_intr_md.ingress_port        : exact   @name("ingress_port");
            hdr.depth_report.phase         : exact   @name("phase");
            hdr.ethernet.dst_addr[15:0]    : ternary @name("packet_id");
        }
        actions = { send_to_loopback; store_depths; @defaultonly reject_worker; }
        default_action = reject_worker();
        size = 512;
    }

    apply {
        depth_worker.apply();
    }
}

#endif
