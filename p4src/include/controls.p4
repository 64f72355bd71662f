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

/* Stage 3a: forwarded mode of QUIC-aware proxying (draft-ietf-masque-quic-proxy-06),
 * identity transform. A short header arriving on a mapped 4-tuple with a mapped DCID
 * leaves with the mapping's 4-tuple and DCID: client -> proxy (target VCID) becomes
 * proxy -> target (target CID); target -> proxy (client CID) becomes proxy -> client
 * (client VCID). Everything else, long headers included, goes on to the proxy host as
 * addressed: the client's own QUIC connection to the proxy shares the 4-tuple. A mapped
 * DCID from another 4-tuple is never forwarded, and counted. */
control QuicForwarding(inout headers_t hdr, inout metadata_t meta,
                       inout standard_metadata_t std_meta) {
    direct_counter(CounterType.packets_and_bytes) quic_forward_counter;
    /* Every packet forwarded, whatever mapping (a mapping's direct counter goes with it
     * when the proxy removes a retired connection ID's mapping). */
    counter(1, CounterType.packets_and_bytes) quic_forwarded;
    counter(1, CounterType.packets) quic_wrong_source;

    action forward(ipv4_addr_t src_addr, l4_port_t src_port, ipv4_addr_t dst_addr,
                   l4_port_t dst_port, quic_cid_t dcid, rank_t rank) {
        hdr.ipv4.src_addr = src_addr;
        hdr.ipv4.dst_addr = dst_addr;
        hdr.udp.src_port = src_port;
        hdr.udp.dst_port = dst_port;
        hdr.udp.checksum = 0;  /* see MpComputeChecksum */
        hdr.quic.dcid = dcid;
        meta.rank = rank;
        meta.quic_forwarded = 1;
        quic_forward_counter.count();
        quic_forwarded.count(0);
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
        size = 65536;
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
        size = 65536;
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

/* Queue occupancy per BMv2 priority, in packets, as AIFO and PACKS see it: the ingress
 * adds a packet it admits to a queue, the egress takes it off when it leaves. v1model
 * shows the ingress no queue depth, so this estimate is what the program uses on both
 * v1model targets; it is exact while the traffic manager drops nothing, which AIFO's
 * and PACKS's own full-queue check ensures when queue_depth is the TM's depth. */
register<bit<16>>(NUM_QUEUES) queue_occupancy;

/* Stage 5: map the rank to one of 8 strict-priority queues (BMv2 serves 7 first).
 * FIFO: one queue. STRICT: a range table. SP-PIFO (Alcoz et al., NSDI'20): adaptive
 * bounds, push-up on enqueue and push-down when no queue admits the rank.
 * AIFO (Yu et al., SIGCOMM'21): one queue, admission by the rank's quantile among the
 * last RANK_WINDOW ranks. PACKS (Alcoz et al., NSDI'25): the same quantile picks the
 * highest-priority queue whose share of the free buffer admits it, or drops the packet.
 * schedmodels/ holds the reference models; the integer rules are written out there. */
control Scheduling(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    /* SP-PIFO bounds; index 0 is the highest-priority queue (BMv2 priority 7). */
    register<rank_t>(NUM_QUEUES) sppifo_bounds;
    /* AIFO/PACKS: the last RANK_WINDOW ranks (a ring) and the index of the oldest. */
    register<rank_t>(RANK_WINDOW) rank_window;
    register<bit<32>>(1) rank_window_head;
    /* The mode the occupancy was last counted under: entering AIFO or PACKS from
     * another mode starts the count from zero. */
    register<bit<3>>(1) counted_mode;
    counter(NUM_QUEUES, CounterType.packets_and_bytes) queue_enqueues;

    action set_mode(bit<3> mode, bit<7> burst_pct, bit<16> queue_depth) {
        meta.sched_mode = mode;
        meta.burst_pct = burst_pct;
        meta.queue_depth = queue_depth;
    }

    table sched_mode {
        actions = { set_mode; }
        default_action = set_mode(SCHED_FIFO, 10, 64);
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
        } else if (meta.sched_mode == SCHED_AIFO || meta.sched_mode == SCHED_PACKS) {
            bit<3> last;
            counted_mode.read(last, 0);
            if (last != meta.sched_mode) {
                queue_occupancy.write(0, 0); queue_occupancy.write(1, 0);
                queue_occupancy.write(2, 0); queue_occupancy.write(3, 0);
                queue_occupancy.write(4, 0); queue_occupancy.write(5, 0);
                queue_occupancy.write(6, 0); queue_occupancy.write(7, 0);
                counted_mode.write(0, meta.sched_mode);
            }
            /* How many of the last RANK_WINDOW ranks are below this one; then this rank
             * takes the oldest slot. */
            rank_t r = meta.rank;
            bit<32> below = 0;
            rank_t w;
            rank_window.read(w, 0);  if (w < r) { below = below + 1; }
            rank_window.read(w, 1);  if (w < r) { below = below + 1; }
            rank_window.read(w, 2);  if (w < r) { below = below + 1; }
            rank_window.read(w, 3);  if (w < r) { below = below + 1; }
            rank_window.read(w, 4);  if (w < r) { below = below + 1; }
            rank_window.read(w, 5);  if (w < r) { below = below + 1; }
            rank_window.read(w, 6);  if (w < r) { below = below + 1; }
            rank_window.read(w, 7);  if (w < r) { below = below + 1; }
            rank_window.read(w, 8);  if (w < r) { below = below + 1; }
            rank_window.read(w, 9);  if (w < r) { below = below + 1; }
            rank_window.read(w, 10); if (w < r) { below = below + 1; }
            rank_window.read(w, 11); if (w < r) { below = below + 1; }
            rank_window.read(w, 12); if (w < r) { below = below + 1; }
            rank_window.read(w, 13); if (w < r) { below = below + 1; }
            rank_window.read(w, 14); if (w < r) { below = below + 1; }
            rank_window.read(w, 15); if (w < r) { below = below + 1; }
            rank_window.read(w, 16); if (w < r) { below = below + 1; }
            rank_window.read(w, 17); if (w < r) { below = below + 1; }
            rank_window.read(w, 18); if (w < r) { below = below + 1; }
            rank_window.read(w, 19); if (w < r) { below = below + 1; }
            bit<32> head;
            rank_window_head.read(head, 0);
            rank_window.write(head, r);
            rank_window_head.write(0, (head + 1 == RANK_WINDOW) ? 32w0 : head + 1);

            bit<32> depth = (bit<32>) meta.queue_depth;
            bit<32> not_burst = 100 - (bit<32>) meta.burst_pct;
            bit<16> o0; bit<16> o1; bit<16> o2; bit<16> o3;
            bit<16> o4; bit<16> o5; bit<16> o6; bit<16> o7;
            queue_occupancy.read(o0, 0); queue_occupancy.read(o1, 1);
            queue_occupancy.read(o2, 2); queue_occupancy.read(o3, 3);
            queue_occupancy.read(o4, 4); queue_occupancy.read(o5, 5);
            queue_occupancy.read(o6, 6); queue_occupancy.read(o7, 7);
            if (meta.sched_mode == SCHED_AIFO) {
                /* One FIFO (priority 0) of `depth` packets holding o0. */
                bit<32> held = (bit<32>) o0;
                if (held >= depth) {
                    DROP(DROP_QUEUE_FULL);
                } else if (100 * held <= (bit<32>) meta.burst_pct * depth
                           || below * not_burst * depth < 100 * RANK_WINDOW * (depth - held)) {
                    meta.queue = 0;
                } else {
                    DROP(DROP_ADMISSION);
                }
            } else {
                /* PACKS over 8 queues of `depth`: queue q (priority 7 - q) admits when it
                 * has room and below . (100-k) . 8 . C < 100 . W . (q+1) . (C - held). */
                bit<32> capacity = 8 * depth;
                bit<32> held = (bit<32>) o0 + (bit<32>) o1 + (bit<32>) o2 + (bit<32>) o3
                               + (bit<32>) o4 + (bit<32>) o5 + (bit<32>) o6 + (bit<32>) o7;
                bit<32> lhs = below * not_burst * 8 * capacity;
                bit<32> share = 100 * RANK_WINDOW * (capacity - held);
                if ((bit<32>) o7 < depth && lhs < 1 * share)      { meta.queue = 7; }
                else if ((bit<32>) o6 < depth && lhs < 2 * share) { meta.queue = 6; }
                else if ((bit<32>) o5 < depth && lhs < 3 * share) { meta.queue = 5; }
                else if ((bit<32>) o4 < depth && lhs < 4 * share) { meta.queue = 4; }
                else if ((bit<32>) o3 < depth && lhs < 5 * share) { meta.queue = 3; }
                else if ((bit<32>) o2 < depth && lhs < 6 * share) { meta.queue = 2; }
                else if ((bit<32>) o1 < depth && lhs < 7 * share) { meta.queue = 1; }
                else if ((bit<32>) o0 < depth && lhs < 8 * share) { meta.queue = 0; }
                else if (held >= capacity) { DROP(DROP_QUEUE_FULL); }
                else { DROP(DROP_ADMISSION); }
            }
            if (meta.drop_reason == DROP_NONE) {
                bit<16> o;
                queue_occupancy.read(o, (bit<32>) meta.queue);
                queue_occupancy.write((bit<32>) meta.queue, o + 1);
                meta.occupancy_counted = 1;
            }
        } else {
            meta.queue = 0;
        }
        if (meta.drop_reason == DROP_NONE) {
            std_meta.priority = meta.queue;
            queue_enqueues.count((bit<32>) meta.queue);
        }
    }
}

/* Egress: a packet AIFO or PACKS counted into its queue has left it. */
control QueueAccounting(inout metadata_t meta) {
    apply {
        if (meta.occupancy_counted == 1) {
            bit<16> o;
            queue_occupancy.read(o, (bit<32>) meta.queue);
            queue_occupancy.write((bit<32>) meta.queue, (o > 0) ? o - 1 : 16w0);
        }
    }
}

#endif
