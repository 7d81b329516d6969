"""The ranges and consistency checks of core/config.py's keys: imported by make_config and
check_key, and on MicroPython forgotten again once they ran (code a board runs once at start
need not stay in its heap)."""
from ustack.core.config import DEFAULTS, is_int


DAY_MS = 86400000

# The range of every int key (inclusive). An int key not listed (a new one) must still be an
# int >= 0; a bool key must be True or False; a string key one of CHOICES.
RANGES = {
    "PBUF_COUNT": (4, 65535),
    "PBUF_SIZE": (600, 65535),         # a 576-byte IPv4 datagram plus headers
    "RX_BATCH": (1, 65535),
    "OFFLOAD_BUFS": (2, 64),           # one waits for the next GRO frame; 64 x 66 KB = 4 MB
    "OFFLOAD_TCP_BUF": (536, 1 << 30),  # as TCP_SND_BUF/TCP_RCV_BUF
    "TCP_MEM": (0, 1 << 30),
    "ARP_ENTRIES": (1, 65535),
    "ARP_MAX_AGE_MS": (1, DAY_MS),
    "ARP_RETRY_MS": (1, DAY_MS),
    "ARP_MAX_RETRIES": (0, 255),
    "ARP_QUEUE": (1, 64),
    "ETH_VLAN": (0, 4094),
    "IP_TTL": (1, 255),                # RFC 791: 8 bits; 0 would be dropped by the next hop
    "ROUTE_ENTRIES": (1, 65535),
    "IPV6_ADDRS": (1, 255),
    "IPV6_HOP_LIMIT": (1, 255),
    "ND_CACHE_SIZE": (1, 65535),
    "ND_DAD_TRANSMITS": (0, 255),
    "SLAAC_RTR_SOLICITS": (0, 255),
    "LOOPBACK_QUEUE": (1, 65535),
    "REASS_SLOTS": (0, 255),
    # RFC 791 / RFC 1122 3.3.2: every host reassembles 576-byte datagrams (556 bytes after
    # the header); total length is 16 bits, so no payload exceeds 65535 - 20 = 65515
    "REASS_SIZE": (556, 65515),
    "REASS_TIMEOUT_MS": (1, 255000),   # RFC 791: at most the 255 s a TTL can last
    "REASS6_SLOTS": (0, 255),
    "REASS6_TIMEOUT_MS": (1, 255000),
    "PMTU_ENTRIES": (1, 4096),
    "PMTU_AGE_MS": (300000, DAY_MS),   # RFC 1191 6.3: no sooner than 5 minutes
    "ICMP_RATE_MS": (0, 60000),
    "ICMP_BURST": (0, 65535),
    "SOCKETS": (1, 1 << 20),           # issue 13: 100 000 idle connections and more
    "UDP_RX_QUEUE": (1, 65535),
    "UDP_RCVBUF": (600, 1 << 30),
    "PBUF_RESERVE_TX": (1, 65535),
    "SOCK_QUEUE_PBUFS": (1, 65535),
    "ARP_PENDING_PBUFS": (0, 65535),
    "EPHEMERAL_LOW": (1, 65535),
    "EPHEMERAL_HIGH": (1, 65535),
    "TCP_MAX_CONNS": (2, 1 << 20),
    "TCP_SND_BUF": (536, 1 << 30),     # one RFC 9293 default-MSS segment; RFC 7323 limit
    "TCP_RCV_BUF": (536, 1 << 30),
    "TCP_BACKLOG": (1, 65535),
    "TCP_SYN_QUEUE": (0, 65535),       # 0: derived
    "TCP_SYNACK_RETRIES": (1, 255),
    "TCP_MAX_ORPHANS": (0, 65535),     # 0: derived
    "TCP_ORPHAN_RETRIES": (1, 255),
    "TCP_FIN_TIMEOUT_MS": (1000, DAY_MS),
    "TCP_CHALLENGE_ACK_GLOBAL": (2, 65535),
    "TCP_RST_RATE_MS": (0, 60000),
    "TCP_SYNCOOKIE_BUDGET": (0, 65535),
    "TCP_RST_BURST": (1, 65535),
    "TCP_MSL_MS": (1, 600000),
    "TCP_RTO_INIT_MS": (1, DAY_MS),
    "TCP_RTO_MIN_MS": (1, DAY_MS),
    "TCP_RTO_MAX_MS": (60000, DAY_MS),  # RFC 6298 2.5: a maximum only if at least 60 s
    "TCP_DELACK_MS": (0, 499),         # RFC 9293 3.8.6.3: the delay MUST be under 0.5 s
    "TCP_ACK_BURST": (2, 64),
    "TCP_MAX_RETRIES": (1, 255),
    "TCP_SYN_RETRIES": (1, 255),
    "TCP_OOO_SEGMENTS": (0, 255),
    "TCP_CC_NONE_SEGMENTS": (1, 10),   # RFC 6928: at most the 10-segment initial window
    "TCP_SACK_SLOTS": (0, 255),
    "TCP_RACK_SLOTS": (2, 255),
    "TCP_ECN": (0, 2),                 # Linux's net.ipv4.tcp_ecn values
    "TCP_KEEPIDLE_MS": (1, DAY_MS),
    "TCP_KEEPINTVL_MS": (1, DAY_MS),
    "TCP_KEEPCNT": (1, 255),
    "TCP_CHALLENGE_ACK_LIMIT": (1, 65535),
    "DNS_TIMEOUT_MS": (1, 600000),
    "DNS_ATTEMPTS": (1, 16),
    "DNS_MSG_SIZE": (512, 65535),      # RFC 1035 4.2.1; a TCP message's length is 16 bits
    "DNS_CACHE_ENTRIES": (0, 1024),
    "DNS_CACHE_ADDRS": (1, 64),
    "DNS_MAX_TTL_S": (0, 604800),      # 0: nothing cached; at most a week (RFC 8767's bound)
    "DNS_CNAME_DEPTH": (1, 32),
    "DHCP_RETRY_MS": (1000, 64000),
    "DHCP_RETRY_MAX_MS": (1000, 600000),
    "DHCP_RENEW_MIN_MS": (1, DAY_MS),
    "DHCP_ARP_PROBES": (0, 16),
    "FILTER_RULES": (1, 4096),
    "FILTER_CONNTRACK": (1, 1 << 20),
    "FILTER_CT_TCP_SYN_MS": (1000, DAY_MS),
    "FILTER_CT_TCP_EST_MS": (1000, 7 * DAY_MS),  # small ints on MicroPython
    "FILTER_CT_TCP_CLOSE_MS": (1000, DAY_MS),
    "FILTER_CT_UDP_MS": (1000, DAY_MS),
    "FILTER_CT_ICMP_MS": (1000, DAY_MS),
    "FILTER_LOG_RATE_MS": (0, 3600000),
    "FILTER_LOG_BURST": (1, 1000),
    "RIP_ROUTES": (1, 4096),
    "RIP_UPDATE_MS": (1000, 3600000),
    "RIP_TIMEOUT_MS": (2000, DAY_MS),
    "RIP_GC_MS": (1000, DAY_MS),
    "RIPNG_ROUTES": (1, 4096),
}
CHOICES = {"TCP_CC": ("newreno", "cubic", "none")}  # core/tcp/cc.py NAMES



def make(defaults, overrides):
    cfg = dict(defaults)
    if overrides:
        if not isinstance(overrides, dict):
            raise ValueError("config: overrides must be a dict of KEY: value")
        for k in overrides:
            if k not in defaults:
                raise ValueError("unknown config key %r" % (k,))
            cfg[k] = overrides[k]
    for k in cfg:
        check_key(k, cfg[k])  # types first: derive() computes with them
    derive(cfg)
    validate(cfg)
    return cfg


def check_key(k, v):
    """One key's type and range; ValueError naming the key."""
    d = DEFAULTS[k]
    if d is None:  # derived when left None (see derive)
        lo, hi = RANGES.get(k, (0, None))
        if v is not None and (not is_int(v) or v < lo or (hi is not None and v > hi)):
            raise ValueError("config: %s must be None (derived) or an int in %d..%s, got %r"
                             % (k, lo, "" if hi is None else hi, v))
    elif d is True or d is False:
        if v is not True and v is not False:
            raise ValueError("config: %s must be True or False, got %r" % (k, v))
    elif isinstance(d, int):
        lo, hi = RANGES.get(k, (0, None))
        if not is_int(v) or v < lo or (hi is not None and v > hi):
            raise ValueError("config: %s must be an int in %d..%s, got %r" % (
                k, lo, "" if hi is None else hi, v))
    elif isinstance(d, tuple):
        if not isinstance(v, (tuple, list)) or [x for x in v if not isinstance(x, str)]:
            raise ValueError("config: %s must be a tuple of strings, got %r" % (k, v))
    elif isinstance(d, str):
        c = CHOICES.get(k)
        if not isinstance(v, str) or (c is not None and v not in c):
            raise ValueError("config: %s must be one of %s, got %r" % (
                k, ", ".join(c) if c else "a string", v))


def derive(cfg):
    """Fill the keys left None from the pool size (lwIP's derived sizes)."""
    if cfg["PBUF_RESERVE_TX"] is None:
        cfg["PBUF_RESERVE_TX"] = max(1, cfg["PBUF_COUNT"] // 8)
    if cfg["ARP_PENDING_PBUFS"] is None:
        cfg["ARP_PENDING_PBUFS"] = max(1, cfg["PBUF_RESERVE_TX"] // 2)
    if cfg["SOCK_QUEUE_PBUFS"] is None:
        n = cfg["PBUF_COUNT"]
        cfg["SOCK_QUEUE_PBUFS"] = max(1, min(n // 2, n - cfg["PBUF_RESERVE_TX"] -
                                             cfg["ARP_PENDING_PBUFS"] - 1))
    if not cfg["TCP_SYN_QUEUE"]:
        cfg["TCP_SYN_QUEUE"] = cfg["TCP_MAX_CONNS"] // 2 or 1
    if not cfg["TCP_MAX_ORPHANS"]:
        cfg["TCP_MAX_ORPHANS"] = cfg["TCP_MAX_CONNS"] // 2 or 1
    if cfg["UDP_RCVBUF"] is None:
        cfg["UDP_RCVBUF"] = cfg["PBUF_SIZE"] * max(1, min(cfg["UDP_RX_QUEUE"],
                                                           cfg["SOCK_QUEUE_PBUFS"] // 4))


def validate(cfg):
    def need(cond, msg):
        if not cond:
            raise ValueError("config: " + msg)
    for k in cfg:
        check_key(k, cfg[k])
    need(cfg["PBUF_COUNT"] >= 4, "PBUF_COUNT must be at least 4")
    need(cfg["PBUF_SIZE"] >= 600, "PBUF_SIZE must hold a 576-byte IPv4 datagram plus headers")
    need(cfg["ARP_ENTRIES"] >= 1, "ARP_ENTRIES must be at least 1")
    need(cfg["ARP_QUEUE"] >= 1, "ARP_QUEUE must be at least 1")
    need(0 <= cfg["ETH_VLAN"] <= 4094, "ETH_VLAN must be a VLAN ID 1..4094 (0: untagged)")
    need(cfg["SOCKETS"] >= 1, "SOCKETS must be at least 1")
    need(1 <= cfg["EPHEMERAL_LOW"] <= cfg["EPHEMERAL_HIGH"] <= 65535,
         "bad ephemeral port range: need EPHEMERAL_LOW <= EPHEMERAL_HIGH")
    need(cfg["TCP_RTO_MIN_MS"] <= cfg["TCP_RTO_INIT_MS"] <= cfg["TCP_RTO_MAX_MS"],
         "need TCP_RTO_MIN_MS <= TCP_RTO_INIT_MS <= TCP_RTO_MAX_MS")
    need(cfg["TCP_SND_BUF"] >= 536 and cfg["TCP_RCV_BUF"] >= 536,
         "TCP buffers must hold at least one 536-byte segment")
    need(cfg["UDP_RX_QUEUE"] >= 1, "UDP_RX_QUEUE must be at least 1")
    need(cfg["RX_BATCH"] >= 1, "RX_BATCH must be at least 1")
    # Pool shares (issue 8, hole 3): whatever sockets leave unread and however many packets
    # wait for ARP, at least one buffer stays for receiving and PBUF_RESERVE_TX for
    # transmitting (with one interface; each more one may hold ARP_PENDING_PBUFS more). A
    # socket's own budget cannot exceed the queues' share, so SOCKETS x UDP_RCVBUF may exceed
    # the pool: the share bounds them all together.
    need(1 <= cfg["PBUF_RESERVE_TX"] < cfg["PBUF_COUNT"],
         "PBUF_RESERVE_TX must be at least 1 and below PBUF_COUNT")
    need(cfg["SOCK_QUEUE_PBUFS"] >= 1, "SOCK_QUEUE_PBUFS must be at least 1")
    need(cfg["ARP_PENDING_PBUFS"] >= 0, "ARP_PENDING_PBUFS must be at least 0")
    need(cfg["SOCK_QUEUE_PBUFS"] + cfg["ARP_PENDING_PBUFS"] + cfg["PBUF_RESERVE_TX"] <
         cfg["PBUF_COUNT"],
         "SOCK_QUEUE_PBUFS + ARP_PENDING_PBUFS + PBUF_RESERVE_TX must leave PBUF_COUNT at least "
         "one buffer to receive into (%d + %d + %d >= %d)" % (
             cfg["SOCK_QUEUE_PBUFS"], cfg["ARP_PENDING_PBUFS"], cfg["PBUF_RESERVE_TX"],
             cfg["PBUF_COUNT"]))
    need(cfg["PBUF_SIZE"] <= cfg["UDP_RCVBUF"] <= cfg["SOCK_QUEUE_PBUFS"] * cfg["PBUF_SIZE"],
         "UDP_RCVBUF must hold one packet buffer (PBUF_SIZE) and at most the socket queues' "
         "share of the pool (SOCK_QUEUE_PBUFS * PBUF_SIZE)")
    need(cfg["TCP_MAX_CONNS"] >= 2, "TCP_MAX_CONNS must be at least 2")
    need(1 <= cfg["TCP_SYN_QUEUE"] < cfg["TCP_MAX_CONNS"],
         "TCP_SYN_QUEUE must be at least 1 and below TCP_MAX_CONNS: half-open connections "
         "must never hold every TCB (RFC 4987)")
    need(cfg["TCP_SYNACK_RETRIES"] >= 1, "TCP_SYNACK_RETRIES must be at least 1")
    need(1 <= cfg["TCP_MAX_ORPHANS"] < cfg["TCP_MAX_CONNS"],
         "TCP_MAX_ORPHANS must be at least 1 and below TCP_MAX_CONNS: closed connections "
         "must never hold every TCB")
    need(cfg["TCP_ORPHAN_RETRIES"] >= 1, "TCP_ORPHAN_RETRIES must be at least 1")
    need(cfg["TCP_FIN_TIMEOUT_MS"] >= 1000, "TCP_FIN_TIMEOUT_MS must be at least 1000")
    need(cfg["TCP_CHALLENGE_ACK_LIMIT"] >= 1, "TCP_CHALLENGE_ACK_LIMIT must be at least 1")
    need(cfg["DHCP_RETRY_MS"] <= cfg["DHCP_RETRY_MAX_MS"],
         "need DHCP_RETRY_MS <= DHCP_RETRY_MAX_MS")
    need(cfg["RIP_TIMEOUT_MS"] > cfg["RIP_UPDATE_MS"] + cfg["RIP_UPDATE_MS"] // 6,
         "RIP_TIMEOUT_MS must exceed RIP_UPDATE_MS (+1/6): a route would time out between "
         "two updates of a live neighbour")
    need(cfg["TCP_CHALLENGE_ACK_GLOBAL"] >= 2, "TCP_CHALLENGE_ACK_GLOBAL must be at least 2")
    need(cfg["TCP_RST_RATE_MS"] >= 0 and cfg["TCP_RST_BURST"] >= 1,
         "need TCP_RST_RATE_MS >= 0 and TCP_RST_BURST >= 1")
    if cfg["DNS_SEARCH"]:
        from ustack.core.wire.dns import encode_name, MAX_NAME
        need(encode_name(bytearray(MAX_NAME + 1), 0, cfg["DNS_SEARCH"]) > 0,
             "DNS_SEARCH must be a domain name like 'example.com', got %r" % (cfg["DNS_SEARCH"],))
