"""Every tunable of the stack, with its default. Boards override a few keys; unknown keys and
inconsistent combinations are rejected with a clear message (lwIP's opt.h + sanity checks)."""

DEFAULTS = {
    # packet buffers (core/buf.py)
    "PBUF_COUNT": 64,          # frames in flight at once (RX + TX + queued)
    "PBUF_SIZE": 1536,         # one Ethernet frame (1514) + headroom slack
    "RX_BATCH": 32,            # frames drained per interface per poll
    # ARP (RFC 826 / RFC 1122 2.3.2)
    "ARP_ENTRIES": 16,
    "ARP_MAX_AGE_MS": 300000,  # a resolved entry is re-validated after this
    "ARP_RETRY_MS": 1000,
    "ARP_MAX_RETRIES": 3,
    "ARP_GRATUITOUS": True,
    # IPv4
    "IP_TTL": 64,
    "IP_FORWARD": False,
    "IP_FORWARD_DIRECTED_BCAST": False,  # RFC 2644: off unless asked for
    "ROUTE_ENTRIES": 16,
    "REASS_SLOTS": 4,          # datagrams being reassembled at once
    "REASS_SIZE": 8192,        # largest reassembled datagram
    "REASS_TIMEOUT_MS": 30000,
    "ICMP_RATE_MS": 10,        # one ICMP error per this many ms (token bucket refill)
    "ICMP_BURST": 10,
    # UDP / sockets
    "SOCKETS": 32,             # sockets of all kinds at once
    "UDP_RX_QUEUE": 16,        # datagrams queued per UDP socket
    "EPHEMERAL_LOW": 49152,    # RFC 6335 dynamic ports
    "EPHEMERAL_HIGH": 65535,
    # TCP (core/tcp)
    "TCP_MAX_CONNS": 16,
    "TCP_SND_BUF": 16384,
    "TCP_RCV_BUF": 16384,
    "TCP_BACKLOG": 8,
    "TCP_SYN_QUEUE": 16,
    "TCP_MSL_MS": 30000,       # TIME_WAIT lasts 2*MSL
    "TCP_RTO_INIT_MS": 1000,   # RFC 6298 2.1
    "TCP_RTO_MIN_MS": 200,
    "TCP_RTO_MAX_MS": 60000,
    "TCP_DELACK_MS": 200,
    "TCP_MAX_RETRIES": 12,
    "TCP_SYN_RETRIES": 6,
    "TCP_OOO_SEGMENTS": 8,
    "TCP_CC": "newreno",
    "TCP_WSCALE": True,
    "TCP_TIMESTAMPS": True,
    "TCP_SACK": True,
    "TCP_KEEPIDLE_MS": 7200000,
    "TCP_KEEPINTVL_MS": 75000,
    "TCP_KEEPCNT": 9,
    "TCP_CHALLENGE_ACK_LIMIT": 10,  # per second, RFC 5961 section 7
    "TCP_RST_RATE_MS": 5,      # RSTs for segments to no connection: one per this many ms
    "TCP_RST_BURST": 50,       # after a burst of this many (token bucket; RATE_MS 0: no limit)
}


def make_config(overrides=None):
    cfg = dict(DEFAULTS)
    if overrides:
        for k in overrides:
            if k not in DEFAULTS:
                raise ValueError("unknown config key %r" % (k,))
            cfg[k] = overrides[k]
    validate(cfg)
    return cfg


def validate(cfg):
    def need(cond, msg):
        if not cond:
            raise ValueError("config: " + msg)
    need(cfg["PBUF_COUNT"] >= 4, "PBUF_COUNT must be at least 4")
    need(cfg["PBUF_SIZE"] >= 600, "PBUF_SIZE must hold a 576-byte IPv4 datagram plus headers")
    need(cfg["ARP_ENTRIES"] >= 1, "ARP_ENTRIES must be at least 1")
    need(cfg["SOCKETS"] >= 1, "SOCKETS must be at least 1")
    need(1 <= cfg["EPHEMERAL_LOW"] <= cfg["EPHEMERAL_HIGH"] <= 65535, "bad ephemeral port range")
    need(cfg["TCP_RTO_MIN_MS"] <= cfg["TCP_RTO_INIT_MS"] <= cfg["TCP_RTO_MAX_MS"],
         "need TCP_RTO_MIN_MS <= TCP_RTO_INIT_MS <= TCP_RTO_MAX_MS")
    need(cfg["TCP_SND_BUF"] >= 536 and cfg["TCP_RCV_BUF"] >= 536,
         "TCP buffers must hold at least one 536-byte segment")
    need(cfg["UDP_RX_QUEUE"] >= 1, "UDP_RX_QUEUE must be at least 1")
    need(cfg["RX_BATCH"] >= 1, "RX_BATCH must be at least 1")
    need(cfg["TCP_RST_RATE_MS"] >= 0 and cfg["TCP_RST_BURST"] >= 1,
         "need TCP_RST_RATE_MS >= 0 and TCP_RST_BURST >= 1")
