"""Stateful packet filter: ordered rules at the network layer's hook points, connection tracking.

Five chains, as netfilter names them: prerouting, input, forward, output, postrouting. The
stack calls three entry points (stack.filter_in / filter / filter_out, set by install()):

    local delivery   prerouting, input               (after reassembly, before demux)
    forwarding       prerouting, forward, postrouting
    local output     output, postrouting

A chain is walked in order; the first rule whose every match holds decides (accept, drop,
reject), a `log`-only rule logs and goes on, and the chain's policy decides when no rule
did. Accept in one chain moves on to the next; drop or reject ends the packet.

Rule text (parsed once, off the packet path; a mistake raises ValueError naming the word):

    HOOK [iif NAME] [oif NAME] [ip|ip6|family 4|6] [tcp|udp|icmp|icmpv6|proto N]
         [saddr ADDR[/P]] [daddr ADDR[/P]] [sport P[-Q]] [dport P[-Q]]
         [flags F,..[/F,..]] [type echo-request|N] [code N] [ct STATE,..]
         [limit N/second|minute|hour [burst N]] [log] ACTION [with port|admin|host|net]
         [else ACTION]
    ACTION: accept | drop | reject | log ; STATE: new established related invalid
    policy HOOK accept|drop

`flags V/M` matches (tcp flags & M) == V (M defaults to V). `limit`: a token bucket per rule;
a packet over it takes the rule's else action (drop by default). `reject` answers TCP with a
RST and everything else with an ICMP destination unreachable (port unreachable unless `with`
says otherwise), through the stack's own RST/ICMP error builders and their rate limits.

Families: a rule matches IPv4 and IPv6 alike unless its family is set - by `ip`/`ip6`/`family
4|6`, or inferred from an address (`saddr 2001:db8::/32`) or from icmp (4) / icmpv6 (6); words
that disagree are refused, naming the later one. ICMPv6 types by number or by nft's and
ip6tables' names (echo-request 128, nd-neighbor-solicit 135, ...). On IPv6, reject sends
what ip6tables' REJECT sends by default: ICMPv6 port unreachable (RFC 4443 3.1 code 4; `with
admin` code 1, `host` 3, `net` 0), and TCP a RST. A reject of our own datagram (output,
postrouting) queues that answer on lo, as ip6tables' REJECT answers through lo: it comes in
at the next poll, and the socket gets ECONNREFUSED.

Neighbour discovery and MLD (ICMPv6 130-137, 143) are filtered like any datagram, as
ip6tables and nft filter them: with `policy input drop`, accept them by a rule (`input accept
icmpv6 type nd-neighbor-solicit`, `... nd-neighbor-advert`, and for SLAAC
`nd-router-advert`), or the link goes dark for IPv6. Such a drop is never silent: drop_nd
counts it and the first one after each rule change logs a line saying which rule to add.
They carry ct state new (Linux calls them untracked) and never make an entry.

Memory is fixed: FILTER_RULES rules (parallel int lists) and FILTER_CONNTRACK tracked flows
(parallel int lists plus 32 address bytes each). Matching reads the headers where they are;
nothing is allocated per packet (a log line, rate-limited, is the exception).

Connection tracking (only when a rule matches on ct): an accepted TCP SYN, UDP datagram, ICMP
echo request or other-protocol datagram with no entry makes one, keyed by the 5-tuple and
found from both directions. A flow is new until its first reply, established after; an ICMP
error quoting a tracked flow is related; TCP without SYN, an echo reply or an ICMP error with
no entry is invalid. When the table is full an expired entry is reused, else the oldest
never-answered one is evicted (ct_early_drop); failing that the new flow is dropped
(ct_full): with rules that need state its replies could not be told from attacks. Entries
expire lazily: when a lookup walks past them or the table is full (no timer runs).

IPv6's extension headers are walked (core/wire/ipv6.py walk) to the transport header; a
later fragment (forwarded) has no ports, as in IPv4. A packet of neither family, or IPv6 in a
build without core/wire/ipv6.py, meets the chains' policies alone (not_ip).
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
try:
    from ustack.core import addr6
    from ustack.core.wire import ipv6 as w6
except ImportError:  # a build without the ipv6 feature: IPv6 meets the policies alone
    addr6 = None
    w6 = None

FILTER_COUNTERS = (
    "drop_rule", "drop_policy", "drop_limit", "reject_tcp", "reject_icmp", "ct_full",
    "ct_new", "ct_expired", "ct_early_drop", "ct_invalid", "ct_related", "logged",
    "log_suppressed", "not_ip", "drop_nd",
)

HOOK_NAMES = ("prerouting", "input", "forward", "output", "postrouting")
PREROUTING = const(0)
INPUT = const(1)
FORWARD = const(2)
OUTPUT = const(3)
POSTROUTING = const(4)
NONE = const(-1)

ACCEPT = const(0)
DROP = const(1)
REJECT = const(2)
CONTINUE = const(3)  # a log-only rule
ACTION_NAMES = ("accept", "drop", "reject", "log")

# conntrack states a rule matches (bits)
CT_NEW = const(1)
CT_ESTABLISHED = const(2)
CT_RELATED = const(4)
CT_INVALID = const(8)
CT_NAMES = ("new", "established", "related", "invalid")

# TCP flags (RFC 9293 3.1, RFC 3168 6.1)
FLAG_NAMES = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")
F_FIN = const(0x01)
F_SYN = const(0x02)
F_RST = const(0x04)
F_ACK = const(0x10)

PROTO_ICMP = const(1)
PROTO_TCP = const(6)
PROTO_UDP = const(17)
PROTO_ICMPV6 = const(58)
PROTO_NAMES = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "ipv6-icmp": 58}
# RFC 792 types by name (iptables' names)
ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4,
              "redirect": 5, "echo-request": 8, "time-exceeded": 11, "parameter-problem": 12,
              "timestamp-request": 13, "timestamp-reply": 14}
# RFC 4443 / RFC 4861 / RFC 3810 types by nft's names, and ip6tables' where they differ
ICMP6_TYPES = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
               "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
               "mld-listener-query": 130, "mld-listener-report": 131,
               "mld-listener-done": 132, "mld-listener-reduction": 132,
               "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
               "nd-neighbor-advert": 136, "nd-redirect": 137, "mld2-listener-report": 143,
               "router-solicitation": 133, "router-advertisement": 134,
               "neighbour-solicitation": 135, "neighbor-solicitation": 135,
               "neighbour-advertisement": 136, "neighbor-advertisement": 136, "redirect": 137}
ICMP_ECHO_REPLY = const(0)
ICMP_ECHO_REQUEST = const(8)
ICMP6_ECHO_REQUEST = const(128)
ICMP6_ECHO_REPLY = const(129)
ICMP6_DEST_UNREACH = const(1)
# the ICMPv6 code (RFC 4443 3.1) a reject sends for each `with` word's ICMP code
REJECT6_CODES = {0: 0, 1: 3, 3: 4, 13: 1}
# RFC 792 / RFC 1812 5.2.7.1 destination unreachable codes a reject may send
REJECT_CODES = {"net": 0, "host": 1, "port": 3, "admin": 13}
ICMP_DEST_UNREACH = const(3)

UNITS_MS = {"second": 1000, "s": 1000, "minute": 60000, "m": 60000, "hour": 3600000,
            "h": 3600000}
SMALL = const(0x3FFFFFFF)  # MicroPython small-int bound: token buckets stay under it

# TCP tracking states
TS_SYN_SENT = const(1)
TS_SYN_RECV = const(2)
TS_ESTABLISHED = const(3)
TS_CLOSING = const(4)     # a FIN seen
TS_CLOSED = const(5)      # a RST seen
RST_LINGER_MS = const(10000)  # a reset flow is kept this long (Linux's tcp close timeout)
ADDR = const(32)          # address bytes per conntrack entry: two of 16 (IPv6-ready)


def _addr(word, v):
    """ADDR[/P] -> (bytes of 4 or 16, prefix); ValueError naming the word."""
    a = v
    p = -1
    if "/" in v:
        a, ps = v.split("/", 1)
        try:
            p = int(ps)
        except ValueError:
            raise ValueError("%s %s: prefix %r is not a number" % (word, v, ps))
    if ":" in a:
        return _addr6(word, v, a, p)
    parts = a.split(".")
    try:
        if len(parts) != 4:
            raise ValueError
        nums = [int(x) for x in parts]
        for x in nums:
            if not 0 <= x <= 255:
                raise ValueError
        out = bytes(nums)
    except (ValueError, OverflowError):
        raise ValueError("%s %s: not an address like 192.0.2.0/24" % (word, v))
    if p < 0:
        p = 32
    if not 0 <= p <= 32:
        raise ValueError("%s %s: prefix must be 0..32" % (word, v))
    return _network(word, v, out, p, lambda net: ".".join(str(x) for x in net))


def _addr6(word, v, a, p):
    """The IPv6 half of _addr: 2001:db8::/32 -> (16 bytes, 32)."""
    if addr6 is None:
        raise ValueError("%s %s: IPv6 needs the ipv6 feature (core/addr6.py)" % (word, v))
    try:
        out = addr6.pton(a)
    except (OSError, ValueError):
        raise ValueError("%s %s: not an IPv6 address like 2001:db8::/32" % (word, v))
    if p < 0:
        p = 128
    if not 0 <= p <= 128:
        raise ValueError("%s %s: an IPv6 prefix must be 0..128" % (word, v))
    return _network(word, v, out, p, addr6.ntop)


def _network(word, v, out, p, show):
    """(out, p) when no bit past the prefix is set, else a ValueError naming the network."""
    net = bytes([out[i] & _mask_byte(p - 8 * i) for i in range(len(out))])
    if net != out:
        raise ValueError("%s %s: host bits set (the network is %s/%d)" % (word, v, show(net), p))
    return out, p


def _family(r, fam, word):
    """The rule's family is fam by `word`; ValueError when an earlier word said the other."""
    if r["family"] and r["family"] != fam:
        raise ValueError("%s: an IPv%d word in an IPv%d rule (%s said so)"
                         % (word, fam, r["family"], r["famw"]))
    r["family"] = fam
    r["famw"] = word


def _mask_byte(keep):
    """The mask byte that keeps `keep` leading bits (all of them from 8, none below 1)."""
    return 0xFF if keep >= 8 else (0 if keep <= 0 else (0xFF << (8 - keep)) & 0xFF)


def _num(word, v, lo, hi, what):
    try:
        x = int(v)
    except ValueError:
        raise ValueError("%s %s: not %s" % (word, v, what))
    if not lo <= x <= hi:
        raise ValueError("%s %s: must be %d..%d" % (word, v, lo, hi))
    return x


def _ports(word, v):
    if "-" in v:
        a, b = v.split("-", 1)
    else:
        a = b = v
    lo = _num(word, a, 0, 65535, "a port 0..65535 (or a range like 1000-2000)")
    hi = _num(word, b, 0, 65535, "a port 0..65535 (or a range like 1000-2000)")
    if lo > hi:
        raise ValueError("%s %s: the range's start is above its end" % (word, v))
    return lo, hi


def _flags(word, v):
    bits = 0
    for f in v.split(","):
        if f not in FLAG_NAMES:
            raise ValueError("%s %s: unknown TCP flag %r (known: %s)"
                             % (word, v, f, ",".join(FLAG_NAMES)))
        bits |= 1 << FLAG_NAMES.index(f)
    return bits


def _action(word, v):
    if v not in ACTION_NAMES:
        raise ValueError("%s %s: not an action (accept, drop, reject, log)" % (word, v))
    return ACTION_NAMES.index(v)


def parse_rule(text):
    """One rule's text -> a dict of its fields (None: no match on it). ValueError names the
    first word at fault."""
    if not isinstance(text, str):
        raise ValueError("a rule is text like 'input drop tcp dport 23', got %r" % (text,))
    w = text.split()
    if not w:
        raise ValueError("empty rule (e.g. 'input drop tcp dport 23')")
    if w[0] not in HOOK_NAMES:
        raise ValueError("%s: not a hook (prerouting, input, forward, output, postrouting)"
                         % w[0])
    r = {"hook": HOOK_NAMES.index(w[0]), "iif": None, "oif": None, "family": 0, "famw": "",
         "proto": -1,
         "saddr": None, "daddr": None, "sport": None, "dport": None, "flags": None,
         "type": -1, "code": -1, "ct": 0, "limit": None, "log": False, "action": None,
         "with": -1, "else": DROP}
    i = 1
    n = len(w)
    while i < n:
        k = w[i]
        i += 1
        if k in ACTION_NAMES:
            if k == "log" and i < n and w[i] in ACTION_NAMES:
                r["log"] = True  # `log drop`: log, then drop
                continue
            if r["action"] is not None:
                raise ValueError("%s: a second action (the rule already says %s)"
                                 % (k, ACTION_NAMES[r["action"]]))
            r["action"] = ACTION_NAMES.index(k)
            if k == "log":
                r["log"] = True
            continue
        if k in ("ip", "ip6"):
            _family(r, 6 if k == "ip6" else 4, k)
            continue
        if k in PROTO_NAMES:
            if r["proto"] >= 0:
                raise ValueError("%s: a second protocol" % k)
            r["proto"] = PROTO_NAMES[k]
            if r["proto"] == PROTO_ICMP or r["proto"] == PROTO_ICMPV6:
                _family(r, 4 if r["proto"] == PROTO_ICMP else 6, k)
            continue
        if k == "counter":
            continue  # nft's word: every rule counts anyway
        if i >= n:
            raise ValueError("%s needs a value" % k)
        v = w[i]
        i += 1
        if k in ("iif", "oif"):
            if len(v) > 15:
                raise ValueError("%s %s: an interface name has at most 15 characters" % (k, v))
            r[k] = v
        elif k == "proto":
            if r["proto"] >= 0:
                raise ValueError("proto %s: a second protocol" % v)
            r["proto"] = PROTO_NAMES[v] if v in PROTO_NAMES else \
                _num(k, v, 0, 255, "a protocol (tcp, udp, icmp, icmpv6 or a number 0..255)")
            if r["proto"] == PROTO_ICMP or r["proto"] == PROTO_ICMPV6:
                _family(r, 4 if r["proto"] == PROTO_ICMP else 6, "proto " + v)
        elif k == "family":
            if v not in ("4", "6"):
                raise ValueError("family %s: 4 or 6" % v)
            _family(r, int(v), "family " + v)
        elif k in ("saddr", "daddr"):
            r[k] = _addr(k, v)
            _family(r, 4 if len(r[k][0]) == 4 else 6, "%s %s" % (k, v))
        elif k in ("sport", "dport"):
            r[k] = _ports(k, v)
        elif k == "flags":
            if "/" in v:
                a, m = v.split("/", 1)
                val, mask = _flags(k, a), _flags(k, m)
                if val & ~mask:
                    raise ValueError("flags %s: a flag wanted set is outside the mask" % v)
            else:
                val = mask = _flags(k, v)
            r["flags"] = (val, mask)
        elif k == "type":
            r["type"] = v  # a name or number of the rule's ICMP: resolved below
        elif k == "code":
            r["code"] = _num(k, v, 0, 255, "an ICMP code 0..255")
        elif k == "ct":
            if v == "state":  # nft's `ct state new,established`
                if i >= n:
                    raise ValueError("ct state needs a value")
                v = w[i]
                i += 1
            bits = 0
            for s in v.split(","):
                if s not in CT_NAMES:
                    raise ValueError("ct %s: unknown state %r (new, established, related, "
                                     "invalid)" % (v, s))
                bits |= 1 << CT_NAMES.index(s)
            r["ct"] = bits
        elif k == "limit":
            if "/" not in v:
                raise ValueError("limit %s: a rate like 10/second" % v)
            cnt, unit = v.split("/", 1)
            c = _num(k, cnt, 1, 1000000, "a count like 10/second")
            if unit not in UNITS_MS:
                raise ValueError("limit %s: unit %r is not second, minute or hour" % (v, unit))
            burst = 5
            if i < n and w[i] == "burst":
                if i + 1 >= n:
                    raise ValueError("burst needs a value")
                burst = _num("burst", w[i + 1], 1, 65535, "a packet count")
                i += 2
            period = UNITS_MS[unit]
            if period * burst > SMALL:
                raise ValueError("limit %s burst %d: burst x period must stay under %d ms"
                                 % (v, burst, SMALL))
            r["limit"] = (c, period, burst)
        elif k == "with":
            if v not in REJECT_CODES:
                raise ValueError("with %s: not port, admin, host or net" % v)
            r["with"] = REJECT_CODES[v]
        elif k == "else":
            r["else"] = _action(k, v)
        else:
            raise ValueError("%s: unknown word (expected a match, an action or else)" % k)
    if r["action"] is None:
        raise ValueError("%s: no action (accept, drop, reject or log)" % text.strip())
    needs_ports = r["sport"] is not None or r["dport"] is not None
    if needs_ports and r["proto"] not in (PROTO_TCP, PROTO_UDP):
        raise ValueError("%s: ports need tcp or udp" % ("sport" if r["sport"] else "dport"))
    if r["flags"] is not None and r["proto"] != PROTO_TCP:
        raise ValueError("flags: needs tcp")
    t = r["type"]
    if (t != -1 or r["code"] >= 0) and r["proto"] not in (PROTO_ICMP, PROTO_ICMPV6):
        raise ValueError("%s: needs icmp or icmpv6" % ("type" if t != -1 else "code"))
    if t != -1:
        names = ICMP_TYPES if r["proto"] == PROTO_ICMP else ICMP6_TYPES
        r["type"] = names[t] if t in names else _num(
            "type", t, 0, 255, "an %s type (%s or 0..255)" % (
                "ICMP" if r["proto"] == PROTO_ICMP else "ICMPv6",
                "echo-request, ..." if r["proto"] == PROTO_ICMP else
                "echo-request, nd-neighbor-solicit, ..."))
    if r["with"] >= 0 and r["action"] != REJECT:
        raise ValueError("with: only after reject")
    if r["iif"] is not None and r["hook"] in (OUTPUT, ):
        raise ValueError("iif: output has no input interface")
    if r["oif"] is not None and r["hook"] in (PREROUTING, INPUT):
        raise ValueError("oif: %s has no output interface" % HOOK_NAMES[r["hook"]])
    if r["limit"] is None and "else" in w:
        raise ValueError("else: only after limit")
    return r


def parse_policy(text):
    """'policy HOOK accept|drop' -> (hook, action); ValueError naming the word."""
    w = text.split()
    if len(w) != 3 or w[0] != "policy":
        raise ValueError("%s: a policy is 'policy HOOK accept|drop'" % text.strip())
    if w[1] not in HOOK_NAMES:
        raise ValueError("%s: not a hook (prerouting, input, forward, output, postrouting)"
                         % w[1])
    if w[2] not in ("accept", "drop"):
        raise ValueError("%s: a policy is accept or drop" % w[2])
    return HOOK_NAMES.index(w[1]), ACTION_NAMES.index(w[2])


def parse_lines(lines):
    """Board config FILTER: rule and policy lines -> (rule dicts with their text, policies).
    ValueError names the line and the word."""
    rules = []
    pol = [ACCEPT] * 5
    k = 0
    for line in lines:
        k += 1
        try:
            if isinstance(line, str) and line.split()[:1] == ["policy"]:
                h, a = parse_policy(line)
                pol[h] = a
            else:
                r = parse_rule(line)
                r["text"] = " ".join(line.split())
                rules.append(r)
        except ValueError as e:
            raise ValueError("filter line %d %r: %s" % (k, line, e))
    return rules, pol


class RuleSet:
    """Compiled rules: parallel lists indexed by rule number, grouped by hook in order
    (rules of hook h are start[h] .. end[h]-1). Made off the packet path; swapped in whole."""

    def __init__(self, rules, policy, cap):
        if len(rules) > cap:
            raise ValueError("filter: %d rules, FILTER_RULES allows %d" % (len(rules), cap))
        order = []
        for h in range(5):
            for r in rules:
                if r["hook"] == h:
                    order.append(r)
        self.n = len(order)
        self.start = [0] * 5
        self.end = [0] * 5
        for h in range(5):
            s = 0
            while s < self.n and order[s]["hook"] < h:
                s += 1
            e = s
            while e < self.n and order[e]["hook"] == h:
                e += 1
            self.start[h] = s
            self.end[h] = e
        self.policy = list(policy)
        self.text = [r["text"] for r in order]
        self.hook = [r["hook"] for r in order]
        self.iif = [r["iif"] for r in order]
        self.oif = [r["oif"] for r in order]
        self.proto = [r["proto"] for r in order]
        self.fam = [r["family"] for r in order]
        self.saddr = [r["saddr"][0] if r["saddr"] else None for r in order]
        self.splen = [r["saddr"][1] if r["saddr"] else -1 for r in order]
        self.daddr = [r["daddr"][0] if r["daddr"] else None for r in order]
        self.dplen = [r["daddr"][1] if r["daddr"] else -1 for r in order]
        self.sp_lo = [r["sport"][0] if r["sport"] else -1 for r in order]
        self.sp_hi = [r["sport"][1] if r["sport"] else -1 for r in order]
        self.dp_lo = [r["dport"][0] if r["dport"] else -1 for r in order]
        self.dp_hi = [r["dport"][1] if r["dport"] else -1 for r in order]
        self.fl_val = [r["flags"][0] if r["flags"] else 0 for r in order]
        self.fl_mask = [r["flags"][1] if r["flags"] else 0 for r in order]
        self.itype = [r["type"] for r in order]
        self.icode = [r["code"] for r in order]
        self.ct = [r["ct"] for r in order]
        self.act = [r["action"] for r in order]
        self.els = [r["else"] for r in order]
        self.rcode = [r["with"] if r["with"] >= 0 else 3 for r in order]
        self.log = [r["log"] for r in order]
        self.lim_n = [r["limit"][0] if r["limit"] else 0 for r in order]
        self.lim_period = [r["limit"][1] if r["limit"] else 0 for r in order]
        self.lim_cap = [r["limit"][1] * r["limit"][2] if r["limit"] else 0 for r in order]
        self.lim_credit = list(self.lim_cap)  # a bucket starts full (burst)
        self.lim_last = [-1] * self.n
        self.pkts = [0] * self.n
        self.bytes = [0] * self.n
        self.use_ct = False
        for r in order:
            if r["ct"]:
                self.use_ct = True
        self.idle = self.n == 0 and policy[0] == policy[1] == policy[2] == policy[3] == \
            policy[4] == ACCEPT

    def keep_counters(self, old):
        """Carry counters and buckets of rules that stay (same text) from the set replaced."""
        by_text = {}
        for j in range(old.n):
            by_text.setdefault(old.text[j], []).append(j)
        for i in range(self.n):
            js = by_text.get(self.text[i])
            if js:
                j = js.pop(0)  # the same rule twice: each keeps its own, in order
                self.pkts[i] = old.pkts[j]
                self.bytes[i] = old.bytes[j]
                self.lim_credit[i] = old.lim_credit[j]
                self.lim_last[i] = old.lim_last[j]


class Conntrack:
    """A fixed table of tracked flows: entries chained from hash buckets, a free list
    through the same `nxt` links. The orig direction is the first packet's."""

    def __init__(self, size, key):
        self.size = size
        nb = 1
        while nb < size:
            nb <<= 1
        self.mask = nb - 1
        self.head = [-1] * nb
        self.nxt = [0] * size
        for k in range(size):
            self.nxt[k] = k + 1 if k + 1 < size else -1
        self.free = 0 if size else -1
        self.used = 0
        self.addr = bytearray(ADDR * size)   # orig src at k*32, orig dst at k*32 + 16
        self.alen = [0] * size               # 4 (IPv4) or 16
        self.proto = [0] * size
        self.sport = [0] * size
        self.dport = [0] * size
        self.state = [0] * size              # TCP tracking state (TS_*), 0 for others
        self.replied = [False] * size
        self.expires = [0] * size
        self.bucket = [0] * size
        self.key = key


class Filter:
    def __init__(self, stack):
        self.stack = stack
        cfg = stack.config
        self.cap = cfg["FILTER_RULES"]
        self.stats = Counters(FILTER_COUNTERS)
        self.rs = RuleSet([], [ACCEPT] * 5, self.cap)
        # the hash key is drawn at first use: after the port seeded the stack's generator
        self.ct = Conntrack(cfg["FILTER_CONNTRACK"], -1)
        try:
            from ustack.core.tcp.output import send_rst
        except ImportError:  # a build without TCP: reject answers with ICMP only
            send_rst = None
        self.send_rst = send_rst
        self.t_syn = cfg["FILTER_CT_TCP_SYN_MS"]
        self.t_est = cfg["FILTER_CT_TCP_EST_MS"]
        self.t_close = cfg["FILTER_CT_TCP_CLOSE_MS"]
        self.t_udp = cfg["FILTER_CT_UDP_MS"]
        self.t_icmp = cfg["FILTER_CT_ICMP_MS"]
        self.log_rate = cfg["FILTER_LOG_RATE_MS"]
        self.log_burst = cfg["FILTER_LOG_BURST"]
        self.log_tokens = self.log_burst
        self.log_last = 0
        # what the current packet's headers say (set by _parse, read by the matcher)
        self.p_proto = 0
        self.p_l4 = 0       # transport header offset, -1 for a non-first fragment
        self.p_sport = -1
        self.p_dport = -1
        self.p_flags = -1
        self.p_type = -1
        self.p_code = -1
        self.p_ct = 0
        self.p_entry = -1   # its conntrack entry (-1 none)
        self.p_rcode = 3    # the ICMP code a reject sends (port unreachable)
        self.p_dir = 0      # 0 orig, 1 reply
        self.p_fam = 4      # 4 or 6
        self.p_src = 0      # source address offset
        self.p_dst = 0      # destination address offset
        self.p_alen = 4     # address length (4 or 16)
        self.p_end = 0      # the datagram's end (its header's length field)
        self.p_hook = 0     # the chain whose verdict was not accept
        self.res6 = w6.new_result() if w6 is not None else None  # the IPv6 header walk
        self.nd_warned = False  # the first ND/MLD drop after a rule change logs a line
        self.view = _View()  # icmp.error reads pb.buf and pb.index: one reused view

    # ---- rule sets (control path) ---------------------------------------------------------
    def replace(self, rules, policy):
        """Install a new rule set at once (between packets: one attribute store)."""
        rs = RuleSet(rules, policy, self.cap)
        rs.keep_counters(self.rs)
        self.rs = rs
        self.nd_warned = False
        self._hooks()

    def load(self, lines):
        rules, pol = parse_lines(lines)
        self.replace(rules, pol)

    def rules(self):
        """Rule dicts (with text) in list order, as the set holds them."""
        rs = self.rs
        return [dict(parse_rule(rs.text[i]), text=rs.text[i]) for i in range(rs.n)]

    def add(self, text, pos=None):
        r = parse_rule(text)
        r["text"] = " ".join(text.split())
        rules = self.rules()
        if pos is None:
            rules.append(r)
        else:
            rules.insert(pos, r)
        self.replace(rules, self.rs.policy)

    def delete(self, n):
        rules = self.rules()
        if not 0 <= n < len(rules):
            raise ValueError("filter: no rule %d (there are %d)" % (n, len(rules)))
        del rules[n]
        self.replace(rules, self.rs.policy)

    def flush(self):
        self.replace([], self.rs.policy)

    def set_policy(self, hook, action):
        pol = list(self.rs.policy)
        pol[hook] = action
        self.replace(self.rules(), pol)

    def zero(self):
        rs = self.rs
        for i in range(rs.n):
            rs.pkts[i] = 0
            rs.bytes[i] = 0
        self.stats.reset()

    def _hooks(self):
        """No rules and accept everywhere: the stack's hooks are None (one attribute test per
        packet); otherwise all three run (conntrack must see both directions)."""
        st = self.stack
        if self.rs.idle:
            st.filter_in = None
            st.filter = None
            st.filter_out = None
        else:
            st.filter_in = self.hook_in
            st.filter = self.hook_forward
            st.filter_out = self.hook_out

    # ---- the stack's hooks (packet path) -------------------------------------------------
    def hook_in(self, iface, b, off, n):
        return self._check(PREROUTING, INPUT, NONE, iface, None, b, off, n)

    def hook_forward(self, in_if, out_if, b, off, n):
        return self._check(PREROUTING, FORWARD, POSTROUTING, in_if, out_if, b, off, n)

    def hook_out(self, iface, b, off, n):
        return self._check(OUTPUT, POSTROUTING, NONE, None, iface, b, off, n)

    def _check(self, h1, h2, h3, in_if, out_if, b, off, n):
        """True: the packet goes on. A drop or reject is counted here."""
        rs = self.rs
        ver = b[off] >> 4
        if ver == 4:
            self._parse(b, off, n)
        elif ver == 6 and w6 is not None and n >= 40:
            self._parse6(b, off, n)
        else:
            # a family we cannot match meets the chains' policies alone, so a drop policy
            # keeps it out rather than letting it by unfiltered
            self.stats.not_ip += 1
            if rs.policy[h1] == DROP or rs.policy[h2] == DROP or \
                    (h3 != NONE and rs.policy[h3] == DROP):
                self.stats.drop_policy += 1
                return False
            return True
        if rs.use_ct:
            self._ct_state(b, off, n)
        v = self._chain(rs, h1, in_if, out_if, b, off, n)
        if v == ACCEPT:
            v = self._chain(rs, h2, in_if, out_if, b, off, n)
        if v == ACCEPT and h3 != NONE:
            v = self._chain(rs, h3, in_if, out_if, b, off, n)
        if v == ACCEPT:
            if rs.use_ct and not self._ct_confirm(b, off):
                self.stats.ct_full += 1
                return False
            return True
        t = self.p_type
        if ver == 6 and t >= 130 and (t <= 137 or t == 143):
            self._nd_dropped(t)
        if v == REJECT:
            self._reject(in_if, out_if, b, off, n)
        return False

    def _nd_dropped(self, t):
        """Neighbour discovery or MLD dropped (the user's rules said so, as ip6tables would):
        counted, and said once per rule set, since it silently darkens IPv6 on the link."""
        self.stats.drop_nd += 1
        if self.nd_warned:
            return
        self.nd_warned = True
        log = self.stack.log
        if log is not None:
            log("filter: %s dropped ICMPv6 type %d (neighbour discovery/MLD): IPv6 on the "
                "link needs it, e.g. --filter '%s accept icmpv6 type nd-neighbor-solicit' "
                "and '... nd-neighbor-advert' (counted as filter.drop_nd)"
                % (HOOK_NAMES[self.p_hook], t,
                   "input" if self.p_hook <= INPUT else HOOK_NAMES[self.p_hook]))

    def _chain(self, rs, h, in_if, out_if, b, off, n):
        i = rs.start[h]
        e = rs.end[h]
        st = self.stats
        self.p_hook = h
        while i < e:
            if self._match(rs, i, in_if, out_if, b, off):
                rs.pkts[i] += 1
                rs.bytes[i] += n
                a = rs.act[i]
                if rs.lim_n[i] and not self._take(rs, i):
                    a = rs.els[i]
                    if a == DROP:
                        st.drop_limit += 1
                        return DROP
                elif a == DROP:
                    st.drop_rule += 1
                if rs.log[i]:
                    self._log(rs, i, h, a, in_if, out_if, b, off, n)
                if a == REJECT:
                    self.p_rcode = rs.rcode[i]
                if a != CONTINUE:
                    return a
            i += 1
        a = rs.policy[h]
        if a == DROP:
            st.drop_policy += 1
        return a

    def _match(self, rs, i, in_if, out_if, b, off):
        x = rs.iif[i]
        if x is not None and (in_if is None or in_if.name != x):
            return False
        x = rs.oif[i]
        if x is not None and (out_if is None or out_if.name != x):
            return False
        p = rs.fam[i]
        if p and p != self.p_fam:
            return False
        p = rs.proto[i]
        if p >= 0 and p != self.p_proto:
            return False
        if rs.splen[i] >= 0 and not _in_prefix(b, self.p_src, rs.saddr[i], rs.splen[i]):
            return False
        if rs.dplen[i] >= 0 and not _in_prefix(b, self.p_dst, rs.daddr[i], rs.dplen[i]):
            return False
        p = rs.sp_lo[i]
        if p >= 0 and not (p <= self.p_sport <= rs.sp_hi[i]):
            return False
        p = rs.dp_lo[i]
        if p >= 0 and not (p <= self.p_dport <= rs.dp_hi[i]):
            return False
        p = rs.fl_mask[i]
        if p and (self.p_flags < 0 or (self.p_flags & p) != rs.fl_val[i]):
            return False
        p = rs.itype[i]
        if p >= 0 and p != self.p_type:
            return False
        p = rs.icode[i]
        if p >= 0 and p != self.p_code:
            return False
        p = rs.ct[i]
        if p and not (p & self.p_ct):
            return False
        return True

    def _take(self, rs, i):
        """Token bucket of rule i, in integer ms: each packet costs one period, each ms earns
        lim_n; at most lim_cap (burst periods) is saved."""
        now = self.stack.now
        last = rs.lim_last[i]
        cap = rs.lim_cap[i]
        if last < 0:
            c = cap
        else:
            el = now - last
            if el >= cap // rs.lim_n[i]:
                c = cap
            else:
                c = rs.lim_credit[i] + el * rs.lim_n[i]
                if c > cap:
                    c = cap
        rs.lim_last[i] = now
        if c >= rs.lim_period[i]:
            rs.lim_credit[i] = c - rs.lim_period[i]
            return True
        rs.lim_credit[i] = c
        return False

    def _parse(self, b, off, n):
        ihl = (b[off] & 0x0F) << 2
        p = b[off + 9]
        self.p_fam = 4
        self.p_src = off + 12
        self.p_dst = off + 16
        self.p_alen = 4
        self.p_end = off + n
        self.p_proto = p
        self._clear()
        if ((b[off + 6] & 0x1F) | b[off + 7]) != 0:
            self.p_l4 = -1  # a later fragment: no transport header (port rules never match)
            return
        self._transport(b, p, off + ihl, off + n, PROTO_ICMP, 8)

    def _clear(self):
        """What a datagram's transport header fills, and its verdict's state, unset."""
        self.p_sport = -1
        self.p_dport = -1
        self.p_flags = -1
        self.p_type = -1
        self.p_code = -1
        self.p_ct = 0
        self.p_entry = -1
        self.p_rcode = 3

    def _transport(self, b, p, l4, end, icmp, icmp_len):
        """Ports and TCP flags, or the ICMP/ICMPv6 (icmp) type and code, of the transport
        header at b[l4:end] when it is all there."""
        self.p_l4 = l4
        if (p == PROTO_TCP and l4 + 20 <= end) or (p == PROTO_UDP and l4 + 8 <= end):
            self.p_sport = (b[l4] << 8) | b[l4 + 1]
            self.p_dport = (b[l4 + 2] << 8) | b[l4 + 3]
            if p == PROTO_TCP:
                self.p_flags = b[l4 + 13]
        elif p == icmp and l4 + icmp_len <= end:
            self.p_type = b[l4]
            self.p_code = b[l4 + 1]

    def _parse6(self, b, off, n):
        """_parse for IPv6: the extension headers walked (RFC 8200 4) to the transport's."""
        self.p_fam = 6
        self.p_src = off + 8
        self.p_dst = off + 24
        self.p_alen = 16
        end = off + 40 + ((b[off + 4] << 8) | b[off + 5])
        if end > off + n:
            end = off + n
        self.p_end = end
        self._clear()
        res = self.res6
        if w6.walk(b, off, n, b[off + 24] == 0xFF, res) is not None:
            # a chain the input walk would have dropped (only a forwarded or our own
            # datagram gets here unwalked): no protocol a rule could name, ct invalid
            self.p_proto = -1
            self.p_l4 = -1
            return
        p = res[w6.R_PROTO]
        self.p_proto = p
        f = res[w6.R_FRAG]
        if f >= 0 and (((b[f + 2] << 8) | b[f + 3]) & 0xFFF8):
            self.p_l4 = -1  # a later fragment: no transport header (RFC 8200 4.5)
            return
        self._transport(b, p, res[w6.R_OFF], end, PROTO_ICMPV6, 4)

    # ---- connection tracking --------------------------------------------------------------
    def _ct_state(self, b, off, n):
        """The packet's state (p_ct) and entry (p_entry, p_dir)."""
        ct = self.ct
        st = self.stats
        p = self.p_proto
        if self.p_l4 < 0:
            self.p_ct = CT_INVALID  # a later fragment can't be told apart (input reassembles)
            st.ct_invalid += 1
            return
        t = self.p_type  # >= 0 only for the family's own ICMP
        v6 = self.p_fam == 6
        if t >= 0:
            if (v6 and t < 128) or (not v6 and (t == ICMP_DEST_UNREACH or t == 4 or t == 5 or
                                                 t == 11 or t == 12)):
                # RFC 792 / RFC 4443 2.4 (c): an error quotes the datagram that caused it:
                # related when that datagram's flow is tracked
                if self._quoted(b, self.p_l4 + 8, self.p_end) >= 0:
                    self.p_entry = -1  # the error itself updates nothing
                    self.p_ct = CT_RELATED
                    st.ct_related += 1
                    return
                self.p_ct = CT_INVALID
                st.ct_invalid += 1
                return
            if (v6 and (t == ICMP6_ECHO_REQUEST or t == ICMP6_ECHO_REPLY)) or \
                    (not v6 and (t == ICMP_ECHO_REQUEST or t == ICMP_ECHO_REPLY)):
                sp = dp = (b[self.p_l4 + 4] << 8) | b[self.p_l4 + 5] if \
                    self.p_l4 + 8 <= self.p_end else 0
            else:
                # other informational ICMP (ND and MLD among them): not tracked (Linux
                # calls ND untracked); a rule on ct sees it as new
                self.p_ct = CT_NEW
                return
        elif p == PROTO_TCP or p == PROTO_UDP:
            sp = self.p_sport
            dp = self.p_dport
            if sp < 0:
                self.p_ct = CT_INVALID
                st.ct_invalid += 1
                return
        elif p == (PROTO_ICMPV6 if v6 else PROTO_ICMP):
            self.p_ct = CT_NEW  # too short to say its type: not tracked
            return
        else:
            sp = dp = 0
        # an echo flow's requests go one way and its replies the other (Linux's ICMP tuple
        # holds the type): a request the other way is a flow of its own
        k = self._lookup(b, self.p_src, self.p_dst, self.p_alen, p, sp, dp,
                         -1 if t < 0 else (0 if t == ICMP_ECHO_REQUEST or
                                           t == ICMP6_ECHO_REQUEST else 1))
        if k >= 0 and p == PROTO_TCP and ct.state[k] >= TS_CLOSING and not self.p_dir and \
                (self.p_flags & (F_SYN | F_ACK | F_RST)) == F_SYN:
            self._free(k)  # the ports reused by a new connection: the old flow is over
            k = -1
        if k >= 0:
            self.p_entry = k
            self.p_ct = CT_ESTABLISHED if (ct.replied[k] or self.p_dir) else CT_NEW
            return
        if (p == PROTO_TCP and (self.p_flags & (F_SYN | F_ACK | F_RST)) != F_SYN) or \
                t == (ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY):
            # Linux with nf_conntrack_tcp_loose=0: only a SYN opens a TCP flow; a reply
            # without its request is no flow's
            self.p_ct = CT_INVALID
            st.ct_invalid += 1
            return
        self.p_ct = CT_NEW

    def _quoted(self, b, q, end):
        """The entry of the flow whose datagram an ICMP error quotes at b[q] (its header and
        at least 8 bytes of its transport message), or -1. IPv6: the transport header right
        behind the 40 bytes (a quoted extension header's flow is not found)."""
        if self.p_fam == 6:
            if q + 48 > end:
                return -1
            qp = b[q + 6]
            ql4 = q + 40
            s = q + 8
            d = q + 24
            alen = 16
            icmp = PROTO_ICMPV6
        else:
            if q + 20 > end:
                return -1
            qp = b[q + 9]
            ql4 = q + ((b[q] & 0x0F) << 2)
            if ql4 + 8 > end:
                return -1
            s = q + 12
            d = q + 16
            alen = 4
            icmp = PROTO_ICMP
        if qp == PROTO_TCP or qp == PROTO_UDP:
            qs = (b[ql4] << 8) | b[ql4 + 1]
            qd = (b[ql4 + 2] << 8) | b[ql4 + 3]
        elif qp == icmp:
            qs = qd = (b[ql4 + 4] << 8) | b[ql4 + 5]
        else:
            qs = qd = 0
        return self._lookup(b, s, d, alen, qp, qs, qd, -1)

    def _hash(self, b, o, alen, port):
        x = self.ct.key
        i = 0
        while i < alen:
            x = ((x ^ b[o + i]) * 0x9E5) & 0x3FFFF
            i += 1
        x = ((x ^ port) * 0x6B3) & 0x3FFFF
        return x ^ (x >> 7)

    def _bucket(self, b, s, d, alen, p, sp, dp):
        # symmetric: both directions of a flow hash alike (a sum of the two ends)
        if self.ct.key < 0:
            self.ct.key = self.stack.random16()
        return (self._hash(b, s, alen, sp) + self._hash(b, d, alen, dp) + p) & self.ct.mask

    def _lookup(self, b, s, d, alen, p, sp, dp, want):
        """Entry of the flow with addresses at b[s], b[d] (alen bytes each) and these ports,
        or -1; p_dir set (want: only that direction, -1 either). An expired entry found on
        the way is freed."""
        ct = self.ct
        h = self._bucket(b, s, d, alen, p, sp, dp)
        k = ct.head[h]
        now = self.stack.now
        while k >= 0:
            nk = ct.nxt[k]
            if now - ct.expires[k] >= 0:
                self._free(k)
                self.stats.ct_expired += 1
            elif ct.proto[k] == p and ct.alen[k] == alen:
                a = k * ADDR
                ad = ct.addr
                if want != 1 and ct.sport[k] == sp and ct.dport[k] == dp and \
                        _eqn(ad, a, b, s, alen) and _eqn(ad, a + 16, b, d, alen):
                    self.p_dir = 0
                    return k
                if want != 0 and ct.sport[k] == dp and ct.dport[k] == sp and \
                        _eqn(ad, a, b, d, alen) and _eqn(ad, a + 16, b, s, alen):
                    self.p_dir = 1
                    return k
            k = nk
        return -1

    def _free(self, k):
        ct = self.ct
        h = ct.bucket[k]
        j = ct.head[h]
        if j == k:
            ct.head[h] = ct.nxt[k]
        else:
            while j >= 0 and ct.nxt[j] != k:
                j = ct.nxt[j]
            if j >= 0:
                ct.nxt[j] = ct.nxt[k]
        ct.nxt[k] = ct.free
        ct.free = k
        ct.used -= 1

    def _ct_confirm(self, b, off):
        """After accept: make the new flow's entry or advance its state. False only when a
        new flow found the table full."""
        ct = self.ct
        k = self.p_entry
        now = self.stack.now
        p = self.p_proto
        icmp = p == (PROTO_ICMPV6 if self.p_fam == 6 else PROTO_ICMP)
        if k >= 0:
            if self.p_dir:
                ct.replied[k] = True
            if p == PROTO_TCP:
                self._tcp_advance(k)
            else:
                ct.expires[k] = now + (self.t_icmp if icmp else self.t_udp)
            return True
        if self.p_ct != CT_NEW or (icmp and self.p_type != (
                ICMP6_ECHO_REQUEST if self.p_fam == 6 else ICMP_ECHO_REQUEST)):
            return True  # related/invalid packets an accept rule let through make no entry
        if icmp:
            sp = dp = (b[self.p_l4 + 4] << 8) | b[self.p_l4 + 5] if \
                self.p_l4 + 8 <= self.p_end else 0
        elif p == PROTO_TCP or p == PROTO_UDP:
            sp = self.p_sport
            dp = self.p_dport
        else:
            sp = dp = 0
        k = ct.free
        if k < 0:
            k = self._reclaim(now)
            if k < 0:
                return False
        ct.free = ct.nxt[k]
        ct.used += 1
        s = self.p_src
        d = self.p_dst
        alen = self.p_alen
        h = self._bucket(b, s, d, alen, p, sp, dp)
        ct.bucket[k] = h
        ct.nxt[k] = ct.head[h]
        ct.head[h] = k
        a = k * ADDR
        ad = ct.addr
        i = 0
        while i < alen:
            ad[a + i] = b[s + i]
            ad[a + 16 + i] = b[d + i]
            i += 1
        ct.alen[k] = alen
        ct.proto[k] = p
        ct.sport[k] = sp
        ct.dport[k] = dp
        ct.replied[k] = False
        if p == PROTO_TCP:
            ct.state[k] = TS_SYN_SENT
            ct.expires[k] = now + self.t_syn
        else:
            ct.state[k] = 0
            ct.expires[k] = now + (self.t_icmp if icmp else self.t_udp)
        self.stats.ct_new += 1
        return True

    def _reclaim(self, now):
        """The table is full: free an expired entry, else the never-answered one closest to
        expiry (Linux's early drop), and return it to the free list; -1 if all are live."""
        ct = self.ct
        best = -1
        k = 0
        while k < ct.size:
            if now - ct.expires[k] >= 0:
                self._free(k)
                self.stats.ct_expired += 1
                return ct.free
            if not ct.replied[k] and (best < 0 or ct.expires[k] - ct.expires[best] < 0):
                best = k
            k += 1
        if best < 0:
            return -1
        self._free(best)
        self.stats.ct_early_drop += 1
        return ct.free

    def _tcp_advance(self, k):
        """RFC 9293 3.3.2's handshake and close, roughly: SYN, SYN-ACK, ACK -> established;
        a FIN -> closing; a RST -> closed (kept RST_LINGER_MS)."""
        ct = self.ct
        f = self.p_flags
        s = ct.state[k]
        now = self.stack.now
        if f & F_RST:
            ct.state[k] = TS_CLOSED
            t = RST_LINGER_MS if RST_LINGER_MS < self.t_close else self.t_close
        elif f & F_FIN or s == TS_CLOSING:
            ct.state[k] = TS_CLOSING
            t = self.t_close
        elif s == TS_SYN_SENT and self.p_dir and (f & (F_SYN | F_ACK)) == (F_SYN | F_ACK):
            ct.state[k] = TS_SYN_RECV
            t = self.t_syn
        elif (s == TS_SYN_RECV and not self.p_dir and f & F_ACK) or s == TS_ESTABLISHED:
            ct.state[k] = TS_ESTABLISHED
            t = self.t_est
        elif s == TS_CLOSED:
            return
        else:
            t = self.t_syn
        ct.expires[k] = now + t

    def conntrack(self):
        """The live entries as dicts (control path)."""
        ct = self.ct
        out = []
        now = self.stack.now
        names = ("", "syn_sent", "syn_recv", "established", "closing", "closed")
        live = []
        for h in range(ct.mask + 1):
            j = ct.head[h]
            while j >= 0:
                live.append(j)
                j = ct.nxt[j]
        for k in sorted(live):
            if now - ct.expires[k] >= 0:
                continue
            a = k * ADDR
            out.append({"proto": ct.proto[k], "family": 6 if ct.alen[k] == 16 else 4,
                        "src": _text(ct.addr, a, ct.alen[k]),
                        "dst": _text(ct.addr, a + 16, ct.alen[k]),
                        "sport": ct.sport[k], "dport": ct.dport[k],
                        "state": names[ct.state[k]], "replied": ct.replied[k],
                        "expires_ms": ct.expires[k] - now})
        return out

    # ---- actions --------------------------------------------------------------------------
    def _reject(self, in_if, out_if, b, off, n):
        """TCP: a RST as a closed port sends (RFC 9293 3.10.7.1); else ICMP unreachable
        (IPv6: ICMPv6 port unreachable, RFC 4443 3.1 code 4, as ip6tables' REJECT)."""
        stack = self.stack
        p = self.p_proto
        v6 = self.p_fam == 6
        local6 = v6 and in_if is None   # our own datagram: the answer comes back through lo
        iface = in_if if in_if is not None else out_if
        send_rst = self.send_rst
        if p == PROTO_TCP and self.p_flags >= 0 and stack.tcp is not None and \
                send_rst is not None:
            if self.p_flags & F_RST:
                return  # never answer a RST
            l4 = self.p_l4
            f = self.p_flags
            if f & F_ACK:
                seq = (b[l4 + 8] << 24) | (b[l4 + 9] << 16) | (b[l4 + 10] << 8) | b[l4 + 11]
                ack = 0
                fl = F_RST
            else:
                seglen = self.p_end - l4 - ((b[l4 + 12] >> 4) << 2)
                if f & F_SYN:
                    seglen += 1
                if f & F_FIN:
                    seglen += 1
                seq = 0
                ack = (((b[l4 + 4] << 24) | (b[l4 + 5] << 16) | (b[l4 + 6] << 8) | b[l4 + 7]) +
                       seglen) & 0xFFFFFFFF
                fl = F_RST | F_ACK
            if local6:
                self._loop6(b, off, seq, ack, fl, 0)
            else:
                self._rst(stack.tcp, send_rst, b, l4, seq, ack, fl)
            self.stats.reject_tcp += 1
            return
        if v6:
            if stack.icmp6 is None:
                return
            c = REJECT6_CODES.get(self.p_rcode, 4)
            if local6:
                self._loop6(b, off, 0, 0, 0, c)
            else:
                stack.icmp6._send_error(iface, b, off, self.p_end - off, ICMP6_DEST_UNREACH, c,
                                        0, p, self.p_l4)
            self.stats.reject_icmp += 1
            return
        v = self.view
        v.buf = b
        stack.icmp.error(iface, v, off, ICMP_DEST_UNREACH, self.p_rcode, 0)
        v.buf = None
        self.stats.reject_icmp += 1

    def _loop6(self, b, off, seq, ack, flags, code):
        """Reject of our own IPv6 datagram (output, postrouting): the RST (flags) or ICMPv6
        unreachable (code) its destination would send, made here and queued on lo, so it
        comes in at the next poll as ip6tables' REJECT answers through lo - never inside
        the send that is still running. Without lo (config LOOPBACK off) nobody is told."""
        stack = self.stack
        lo = stack.loop
        if lo is None:
            return
        pb = stack.alloc()
        if pb is None:
            return
        o = pb.buf
        o[0] = 0x60
        o[1] = 0
        o[2] = 0
        o[3] = 0
        o[7] = 64
        i = 0
        while i < 16:
            o[8 + i] = b[off + 24 + i]   # from the datagram's destination
            o[24 + i] = b[off + 8 + i]   # to its source: us
            i += 1
        if flags:
            from ustack.core.wire import tcp as wt
            from ustack.core.net.ip import fill_csum
            from ustack.core.checksum import csum
            l4 = self.p_l4
            wt.write_header(o, 40, (b[l4 + 2] << 8) | b[l4 + 3], (b[l4] << 8) | b[l4 + 1],
                            seq, ack, 20, flags, 0)
            ln = 20
            o[4] = 0
            o[5] = ln
            o[6] = PROTO_TCP
            fill_csum(o, 40, ln, 40 + 16, csum(o, 8, 32, PROTO_TCP), PROTO_TCP)
        else:
            from ustack.core.wire import icmp6 as wi
            room = pb.size - 40
            if room > wi.ERR_MAX_LEN - 40:
                room = wi.ERR_MAX_LEN - 40
            ln = wi.write_error(o, 40, ICMP6_DEST_UNREACH, code, 0, b, off, self.p_end - off,
                                room)
            o[4] = ln >> 8
            o[5] = ln & 0xFF
            o[6] = PROTO_ICMPV6
            wi.fill_checksum(o, 0, 40, ln)
        pb.off = 0
        pb.n = 40 + ln
        if not lo.loop.put(pb):
            stack.free(pb)

    def _rst(self, tcp, send_rst, b, l4, seq, ack, flags):
        """send_rst answers "the segment being processed" (tcp.seg_*, which the network
        layer's metadata fills on TCP input): point them at this segment, and give them
        back afterwards (an output hook may run while TCP is processing another segment)."""
        s0 = tcp.seg_src
        d0 = tcp.seg_dst
        a0 = tcp.seg_alen
        h0 = tcp.seg_hdr
        tcp.seg_src = self.p_src
        tcp.seg_dst = self.p_dst
        tcp.seg_alen = self.p_alen
        tcp.seg_hdr = l4
        send_rst(tcp, b, seq, ack, flags)
        tcp.seg_src = s0
        tcp.seg_dst = d0
        tcp.seg_alen = a0
        tcp.seg_hdr = h0

    def _log(self, rs, i, h, a, in_if, out_if, b, off, n):
        """One line through stack.log, at most FILTER_LOG_BURST then one per
        FILTER_LOG_RATE_MS (a flood must not become a flood of lines)."""
        st = self.stats
        now = self.stack.now
        if self.log_rate:
            add = (now - self.log_last) // self.log_rate
            if add > 0:
                t = self.log_tokens + add
                self.log_tokens = t if t < self.log_burst else self.log_burst
                self.log_last += add * self.log_rate
            if self.log_tokens <= 0:
                st.log_suppressed += 1
                return
            self.log_tokens -= 1
        st.logged += 1
        log = self.stack.log
        if log is None:
            return
        log("filter: %s rule %d %s in=%s out=%s proto=%d src=%s dst=%s sport=%d dport=%d "
            "len=%d" % (HOOK_NAMES[h], i, ACTION_NAMES[a] if a != CONTINUE else "log",
                        in_if.name if in_if is not None else "",
                        out_if.name if out_if is not None else "", self.p_proto,
                        _text(b, self.p_src, self.p_alen), _text(b, self.p_dst, self.p_alen),
                        self.p_sport, self.p_dport, n))


class _View:
    """What icmp.error reads of a packet buffer: its bytes, and index -1 (no link header
    check: the datagram was already taken in)."""

    def __init__(self):
        self.buf = None
        self.index = -1


def _in_prefix(b, o, net, plen):
    i = 0
    while plen >= 8:
        if b[o + i] != net[i]:
            return False
        i += 1
        plen -= 8
    if plen:
        m = (0xFF << (8 - plen)) & 0xFF
        if (b[o + i] & m) != net[i]:
            return False
    return True


def _eqn(a, i, b, j, n):
    k = 0
    while k < n:
        if a[i + k] != b[j + k]:
            return False
        k += 1
    return True


def _text(b, o, alen):
    """An address's text (control path and log lines)."""
    if alen == 16:
        return addr6.ntop(b, o)
    return "%d.%d.%d.%d" % (b[o], b[o + 1], b[o + 2], b[o + 3])


def get(stack):
    """The stack's filter, made at first use."""
    f = stack.packet_filter
    if f is None:
        f = stack.packet_filter = Filter(stack)
    return f


def install(stack, lines):
    """Load board config FILTER lines (rules and policies) into the stack's filter."""
    get(stack).load(lines)
