/* Constants of the MASQUE/PIFO dataplane: ports, sizes, codes.
 * p4src/pipeline.py is their one Python copy; tests/test_p4_program.py checks that the
 * two agree. */
#ifndef MP_DEFINES_P4
#define MP_DEFINES_P4

typedef bit<9>  port_t;
typedef bit<48> mac_t;
typedef bit<32> ipv4_addr_t;
typedef bit<16> l4_port_t;
typedef bit<32> flow_id_t;
typedef bit<16> rank_t;
/* QUIC connection IDs the switch matches and rewrites: the proxy's virtual CIDs are
 * VCID_BYTES long (hostagent/masque/quic_proxy_wire.py, VCID_LENGTH), and the switch
 * handles only CIDs of that length, so the short header parses at a fixed offset. */
typedef bit<64> quic_cid_t;

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;

/* v1model: the egress_spec that mark_to_drop() sets. */
const port_t DROP_PORT = 511;

/* Port of the CPU (PacketIn/PacketOut); simple_switch_grpc --cpu-port must match. */
const port_t CPU_PORT = 255;

/* Fast-path shim: UDP to MP_FASTPATH_PORT carries the shim, then the inner payload. */
const l4_port_t MP_FASTPATH_PORT = 4434;
const bit<8> MP_SHIM_VERSION = 1;
const bit<16> MP_SHIM_BYTES = 8;

/* Forwarded mode of QUIC-aware proxying (draft-ietf-masque-quic-proxy-06), identity
 * transform: a short header is 1 byte then the DCID, so a UDP datagram shorter than
 * 8 + 1 + VCID_BYTES bytes is not parsed as QUIC. */
const bit<16> VCID_BYTES = 8;
const bit<16> QUIC_SHORT_MIN_UDP_LEN = 17;

/* Scheduling: 8 strict-priority queues; BMv2 serves priority 7 first. */
const bit<32> NUM_QUEUES = 8;
const bit<3> QUEUE_HIGHEST = 7;
const bit<3> SCHED_FIFO = 0;
const bit<3> SCHED_STRICT = 1;
const bit<3> SCHED_SPPIFO = 2;
const bit<3> SCHED_AIFO = 3;    /* one FIFO behind AIFO's admission (Yu et al., SIGCOMM'21) */
const bit<3> SCHED_PACKS = 4;   /* PACKS (Alcoz et al., NSDI'25) over the 8 queues */
/* AIFO and PACKS: the last RANK_WINDOW ranks estimate a packet's rank quantile. */
const bit<32> RANK_WINDOW = 20;

/* Indices of the drop counter (drop reasons). */
const bit<8> DROP_NONE = 0xff;
const bit<8> DROP_PARSER_ERROR = 0;  /* truncated or malformed headers */
const bit<8> DROP_NOT_IPV4 = 1;
const bit<8> DROP_IPV4_OPTIONS = 2;  /* IHL != 5: options (or an impossible IHL) */
const bit<8> DROP_IPV4_CHECKSUM = 3;
const bit<8> DROP_TTL_EXPIRED = 4;
const bit<8> DROP_NO_ROUTE = 5;
const bit<8> DROP_SHIM_VERSION = 6;
const bit<8> DROP_SPOOFED_FLOW = 7;  /* known flow id, wrong client address or port */
const bit<8> DROP_ADMISSION = 8;     /* refused by AIFO's or PACKS's admission */
const bit<8> DROP_QUEUE_FULL = 9;    /* AIFO/PACKS: no queue with room (a tail drop) */
const bit<32> NUM_DROP_REASONS = 10;

/* Indices of the fast-path miss counter. */
const bit<32> MISS_TO_SLOW_PATH = 0;
const bit<32> MISS_TO_CPU = 1;

/* PacketIn reasons. */
const bit<8> PUNT_FASTPATH_MISS = 1;

#endif
