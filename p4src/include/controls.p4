/* Ingress stages of the MASQUE/PIFO dataplane, one control per stage. */
#ifndef MP_CONTROLS_P4
#define MP_CONTROLS_P4

#include <core.p4>
#include <v1model.p4>
#include "headers.p4"

/* A stage drops a packet by recording why; the ingress counts it once, by reason. */
#define DROP(reason) meta.drop_reason = reason; mark_to_drop(std_meta)

/* Stage 1: drop what cannot be processed, counting why. */
control Sanity(inout headers_t hdr, inout metadata_t meta,
               inout standard_metadata_t std_meta) {
    apply {
        if (std_meta.parser_error != error.NoError) {
            DROP(DROP_PARSER_ERROR);
        } else if (!hdr.ipv4.isValid()) {
            DROP(DROP_NOT_IPV4);
        } else if (meta.ipv4_bad_ihl == 1) {
            DROP(DROP_IPV4_OPTIONS);
        } else if (std_meta.checksum_error == 1) {
            DROP(DROP_IPV4_CHECKSUM);
        } else if (hdr.ipv4.ttl <= 1) {
            DROP(DROP_TTL_EXPIRED);
        }
        /* The shim's version is checked by FastPath, for shims to this switch only: UDP
         * to MP_FASTPATH_PORT of another host is someone else's traffic, routed as is. */
    }
}

/* Stage 2: a rank per flow, matched on the packet as it arrived; DSCP is a per-stream tag. */
control Ranking(inout headers_t hdr, inout metadata_t meta) {
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
        size = 4096;
    }

    apply {
        flow_rank.apply();
    }
}

/* Stage 3: the MASQUE fast path. Client to target: strip the shim and rewrite to
 * proxy -> target. Target to client: add the shim and rewrite to switch -> client. */
control FastPath(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    direct_counter(CounterType.packets_and_bytes) decap_counter;
    direct_counter(CounterType.packets_and_bytes) encap_counter;
    counter(2, CounterType.packets) fastpath_misses;

    action fastpath_here() { }

    /* Addresses of this switch's fast-path endpoint: shims to other addresses are transit. */
    table fastpath_local {
        key = { hdr.ipv4.dst_addr : exact @name("dst_addr"); }
        actions = { fastpath_here; @defaultonly NoAction; }
        default_action = NoAction();
        size = 16;
    }

    action decap(ipv4_addr_t proxy_addr, l4_port_t proxy_port,
                 ipv4_addr_t target_addr, l4_port_t target_port) {
        hdr.shim.setInvalid();
        hdr.ipv4.src_addr = proxy_addr;
        hdr.ipv4.dst_addr = target_addr;
        hdr.ipv4.total_len = hdr.ipv4.total_len - MP_SHIM_BYTES;
        hdr.udp.src_port = proxy_port;
        hdr.udp.dst_port = target_port;
        hdr.udp.length = hdr.udp.length - MP_SHIM_BYTES;
        hdr.udp.checksum = 0;
        decap_counter.count();
    }

    table fastpath_decap {
        key = {
            hdr.ipv4.src_addr : exact @name("client_addr");
            hdr.udp.src_port  : exact @name("client_port");
            hdr.shim.flow_id  : exact @name("flow_id");
        }
        actions = { decap; @defaultonly NoAction; }
        default_action = NoAction();
        counters = decap_counter;
        size = 65536;
    }

    action flow_known() { }

    /* Every installed flow id, whoever its client: a decap miss on a known id is spoofing. */
    table fastpath_flow_ids {
        key = { hdr.shim.flow_id : exact @name("flow_id"); }
        actions = { flow_known; @defaultonly NoAction; }
        default_action = NoAction();
        size = 65536;
    }

    action to_slow_path(port_t port, mac_t dst_mac) {
        std_meta.egress_spec = port;
        hdr.ethernet.dst_addr = dst_mac;
        fastpath_misses.count(MISS_TO_SLOW_PATH);
    }

    action to_cpu() {
        std_meta.egress_spec = CPU_PORT;
        hdr.packet_in.setValid();
        hdr.packet_in.ingress_port = std_meta.ingress_port;
        hdr.packet_in._pad = 0;
        hdr.packet_in.reason = PUNT_FASTPATH_MISS;
        fastpath_misses.count(MISS_TO_CPU);
    }

    /* What an unknown flow id becomes: the controller picks the default action. */
    table fastpath_miss {
        actions = { to_slow_path; to_cpu; }
        default_action = to_cpu();
        size = 1;
    }

    action encap(flow_id_t flow_id, ipv4_addr_t fastpath_addr,
                 ipv4_addr_t client_addr, l4_port_t client_port) {
        hdr.shim.setValid();
        hdr.shim.version = MP_SHIM_VERSION;
        hdr.shim.flags = 0;
        hdr.shim.reserved = 0;
        hdr.shim.flow_id = flow_id;
        hdr.ipv4.src_addr = fastpath_addr;
        hdr.ipv4.dst_addr = client_addr;
        hdr.ipv4.total_len = hdr.ipv4.total_len + MP_SHIM_BYTES;
        hdr.udp.src_port = MP_FASTPATH_PORT;
        hdr.udp.dst_port = client_port;
        hdr.udp.length = hdr.udp.length + MP_SHIM_BYTES;
        hdr.udp.checksum = 0;
        encap_counter.count();
    }

    table fastpath_encap {
        key = {
            hdr.ipv4.src_addr : exact @name("target_addr");
            hdr.udp.src_port  : exact @name("target_port");
            hdr.udp.dst_port  : exact @name("proxy_port");
        }
        actions = { encap; @defaultonly NoAction; }
        default_action = NoAction();
        counters = encap_counter;
        size = 65536;
    }

    apply {
        if (hdr.shim.isValid()) {
            if (fastpath_local.apply().hit) {
                if (hdr.shim.version != MP_SHIM_VERSION) {
                    DROP(DROP_SHIM_VERSION);
                } else if (!fastpath_decap.apply().hit) {
                    if (fastpath_flow_ids.apply().hit) {
                        DROP(DROP_SPOOFED_FLOW);
                    } else {
                        fastpath_miss.apply();
                        meta.routed = 1;
                    }
                }
            }
        } else if (hdr.udp.isValid()) {
            fastpath_encap.apply();
        }
    }
}

/* Stage 4: IPv4 longest-prefix routing with MAC rewrite and TTL decrement. */
control Forwarding(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    action route(port_t port, mac_t src_mac, mac_t dst_mac) {
        std_meta.egress_spec = port;
        hdr.ethernet.src_addr = src_mac;
        hdr.ethernet.dst_addr = dst_mac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }

    action no_route() {
        DROP(DROP_NO_ROUTE);
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

/* Stage 5: map the rank to one of 8 strict-priority queues (BMv2 serves 7 first).
 * FIFO: one queue. STRICT: a range table. SP-PIFO (Alcoz et al., NSDI'20): adaptive
 * bounds, push-up on enqueue and push-down when no queue admits the rank. */
control Scheduling(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    /* SP-PIFO bounds; index 0 is the highest-priority queue (BMv2 priority 7). */
    register<rank_t>(NUM_QUEUES) sppifo_bounds;
    counter(NUM_QUEUES, CounterType.packets_and_bytes) queue_enqueues;

    action set_mode(bit<2> mode) {
        meta.sched_mode = mode;
    }

    table sched_mode {
        actions = { set_mode; }
        default_action = set_mode(SCHED_FIFO);
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

    apply {
        sched_mode.apply();
        if (meta.sched_mode == SCHED_STRICT) {
            rank_to_queue.apply();
        } else if (meta.sched_mode == SCHED_SPPIFO) {
            rank_t r = meta.rank;
            rank_t b0; rank_t b1; rank_t b2; rank_t b3;
            rank_t b4; rank_t b5; rank_t b6; rank_t b7;
            sppifo_bounds.read(b0, 0); sppifo_bounds.read(b1, 1);
            sppifo_bounds.read(b2, 2); sppifo_bounds.read(b3, 3);
            sppifo_bounds.read(b4, 4); sppifo_bounds.read(b5, 5);
            sppifo_bounds.read(b6, 6); sppifo_bounds.read(b7, 7);
            /* Scan from the lowest-priority queue up; push-up the bound that admits r. */
            if (r >= b7)      { b7 = r; meta.queue = 0; }
            else if (r >= b6) { b6 = r; meta.queue = 1; }
            else if (r >= b5) { b5 = r; meta.queue = 2; }
            else if (r >= b4) { b4 = r; meta.queue = 3; }
            else if (r >= b3) { b3 = r; meta.queue = 4; }
            else if (r >= b2) { b2 = r; meta.queue = 5; }
            else if (r >= b1) { b1 = r; meta.queue = 6; }
            else if (r >= b0) { b0 = r; meta.queue = 7; }
            else {
                /* Push-down: r < b0, so cost > 0 and no subtraction below wraps. */
                rank_t cost = b0 - r;
                b0 = r;
                b1 = (b1 > cost) ? b1 - cost : 16w0;
                b2 = (b2 > cost) ? b2 - cost : 16w0;
                b3 = (b3 > cost) ? b3 - cost : 16w0;
                b4 = (b4 > cost) ? b4 - cost : 16w0;
                b5 = (b5 > cost) ? b5 - cost : 16w0;
                b6 = (b6 > cost) ? b6 - cost : 16w0;
                b7 = (b7 > cost) ? b7 - cost : 16w0;
                meta.queue = 7;
            }
            sppifo_bounds.write(0, b0); sppifo_bounds.write(1, b1);
            sppifo_bounds.write(2, b2); sppifo_bounds.write(3, b3);
            sppifo_bounds.write(4, b4); sppifo_bounds.write(5, b5);
            sppifo_bounds.write(6, b6); sppifo_bounds.write(7, b7);
        } else {
            meta.queue = 0;
        }
        std_meta.priority = meta.queue;
        queue_enqueues.count((bit<32>) meta.queue);
    }
}

#endif
