"""DNS stub resolver (RFC 1035, RFC 1123 6.1.3, RFC 5452): names to IPv4/IPv6 addresses.

    stack.dns.set_servers(["192.0.2.1"], search="example.com")
    addrs = stack.dns.resolve("www", AF_INET)     # [b'\\xc0\\x00\\x02\\x07', ...]

A query goes to each server in turn (DNS_ATTEMPTS rounds, DNS_TIMEOUT_MS each), over UDP
from a fresh random source port with a fresh random ID (RFC 5452 section 9.2); an answer is
taken only when it comes from the server's address and port 53 (the socket is connected;
UDP counts others as rx_no_port) and repeats our ID and our question (RFC 5452 section 9.1);
everything else is counted and dropped while we keep waiting. A server's ICMP port
unreachable ends its turn at once. A truncated answer (TC) is asked again over TCP (RFC
7766 section 5). CNAMEs are followed inside the answer and, when the chain ends outside
it, by a new query (at most DNS_CNAME_DEPTH links). Names under 'invalid.' fail without a
query, names under 'localhost.' are the loopback address (RFC 6761 6.3, 6.4). A name
without dots is tried with the search domain first, a dotted one as is first (resolv.conf's
ndots:1). Negative answers are cached for their SOA's
negative TTL (RFC 2308 section 5), never without one.

Failures raise OSError with getaddrinfo's codes, as MicroPython's own getaddrinfo does
(the CPython port turns them into socket.gaierror): EAI_NONAME (NXDOMAIN), EAI_NODATA
(the name exists but has no address of that family), EAI_AGAIN (no server answered, or
each answered SERVFAIL/REFUSED), EAI_FAIL (no servers configured, or only broken answers).

Fixed memory: the query and answer buffers (DNS_MSG_SIZE) and the cache (DNS_CACHE_ENTRIES
names with up to DNS_CACHE_ADDRS addresses each, kept at most min(TTL, DNS_MAX_TTL_S)) are
allocated once, at the first query. Blocking: drives the stack through its sockets' waits.
"""
from ustack.core.compat import const, EADDRINUSE
from ustack.core.compat import Timeout
from ustack.core.stats import Counters
from ustack.core.wire import dns as w
from ustack.core.wire import ipv4 as ip4
from ustack.core import socket as so

DNS_COUNTERS = (
    "queries", "cache_hits", "tx_udp", "tx_tcp", "timeouts", "tcp_failed", "truncated",
    "rx_answers", "rx_short", "rx_not_response", "refused", "rx_bad_id",
    "rx_bad_question", "rx_malformed", "rx_too_big", "rx_server_fail", "nxdomain", "nodata",
    "cname_followed", "cname_too_deep", "addrs_dropped",
)

# getaddrinfo's error codes (glibc's values, which CPython's socket.EAI_* carry on Linux and
# MicroPython's unix port raises as OSError(code))
EAI_NONAME = const(-2)
EAI_AGAIN = const(-3)
EAI_FAIL = const(-4)
EAI_NODATA = const(-5)
EAI_FAMILY = const(-6)
MESSAGES = {
    EAI_NONAME: "Name or service not known",
    EAI_AGAIN: "Temporary failure in name resolution",
    EAI_FAIL: "Non-recoverable failure in name resolution",
    EAI_NODATA: "No address associated with hostname",
    EAI_FAMILY: "ai_family not supported",
}

AF_INET = const(2)
AF_INET6 = const(10)

LOOPBACK4 = b"\x7f\x00\x00\x01"
LOOPBACK6 = b"\x00" * 15 + b"\x01"
MAX_SERVERS = const(3)   # resolv.conf's MAXNS
BIND_TRIES = const(8)    # random source ports tried before the allocator picks one

# outcome of one exchange with one server
R_OK = const(0)
R_NXDOMAIN = const(1)
R_NODATA = const(2)
R_CHASE = const(3)       # a CNAME chain leading out of the answer: ask for its end
R_TRUNC = const(4)
R_FAIL = const(5)        # SERVFAIL, REFUSED, ...: try the next server
R_TIMEOUT = const(6)
R_BROKEN = const(7)      # an answer we could not use (too big for DNS_MSG_SIZE)


def _under(name, tld):
    """name is tld or ends with '.' + tld (either with a trailing dot; any case)?"""
    n = len(name)
    if n and name[n - 1] == ".":
        n -= 1
    k = len(tld)
    return n >= k and name[n - k:n].lower() == tld and (n == k or name[n - k - 1] == ".")


def is_invalid(name):
    """RFC 6761 6.4: names under 'invalid.' fail at once, without a query."""
    return _under(name, "invalid")


def is_localhost(name):
    """RFC 6761 6.3: 'localhost.' and the names under it are the loopback address, never
    asked of a name server."""
    return _under(name, "localhost")


def check_servers(servers):
    """Name servers as 4-byte addresses, from text or bytes; ValueError naming a bad one."""
    out = []
    for s in servers:
        if isinstance(s, (bytes, bytearray)) and len(s) == 4:
            out.append(bytes(s))
            continue
        try:
            out.append(ip4.aton(s))
        except (ValueError, TypeError, AttributeError):
            raise ValueError("dns: a server must be an IPv4 address like '192.0.2.1', got %r"
                             % (s,))
    if len(out) > MAX_SERVERS:
        raise ValueError("dns: at most %d servers, got %d" % (MAX_SERVERS, len(out)))
    return out


def gai_error(code):
    return OSError(code, MESSAGES.get(code, "Name resolution failed"))


class Resolver:
    def __init__(self, stack):
        self.stack = stack
        self.stats = Counters(DNS_COUNTERS)
        cfg = stack.config
        self.servers = []
        self.search = cfg["DNS_SEARCH"]
        self.qbuf = None   # allocated at the first query
        self.busy = False  # a resolution is under way (its socket waits let others in)
        try:
            import os
            self._urandom = os.urandom
        except (ImportError, AttributeError):
            self._urandom = None

    # ---- configuration --------------------------------------------------------------------
    def set_servers(self, servers, search=None):
        """The name servers (IPv4 addresses as text or 4 bytes, at most MAX_SERVERS, the
        first asked first) and, when given, the search domain ('' for none). DHCP's option 6
        and 15 (RFC 2132 3.8, 3.17) land here. ValueError names a bad one; nothing changes.
        The cache is emptied when the servers change (names are cached fully qualified, so
        a new search domain leaves it valid)."""
        out = check_servers(servers)
        if search is not None:
            if not isinstance(search, str) or (search and w.encode_name(
                    bytearray(w.MAX_NAME + 1), 0, search) < 0):
                raise ValueError("dns: search must be a domain name like 'example.com', got %r"
                                 % (search,))
        if out != self.servers:
            self.flush()  # other servers may answer otherwise; the same ones (a DHCP
            #               renewal hands them over again) keep what they told us
        self.servers = out
        if search is not None:
            self.search = search

    def flush(self):
        """Forget every cached answer (the servers changed)."""
        if self.qbuf is not None:
            i = 0
            while i < len(self.c_exp):
                self.c_exp[i] = 0
                i += 1

    def _alloc(self):
        cfg = self.stack.config
        size = cfg["DNS_MSG_SIZE"]
        self.qbuf = bytearray(2 + w.HDR_LEN + w.MAX_NAME + 4)  # TCP's length prefix first
        self.rbuf = bytearray(size)
        self.qname = bytearray(w.MAX_NAME)    # the name asked for now
        self.target = bytearray(w.MAX_NAME)   # the end of its CNAME chain so far
        self.scratch = bytearray(w.MAX_NAME)
        self._owner = bytearray(w.MAX_NAME)   # the record being read
        self._rr_olen = self._rr_type = self._rr_ttl = self._rr_len = 0
        k = cfg["DNS_CACHE_ADDRS"]
        self.found = bytearray(16 * k)
        self.nfound = 0
        self.ttl = 0
        self.tlen = 0
        n = cfg["DNS_CACHE_ENTRIES"]
        self.c_name = [bytearray(w.MAX_NAME) for _ in range(n)]
        self.c_nlen = [0] * n
        self.c_type = [0] * n
        self.c_exp = [0] * n      # 0: free
        self.c_naddr = [0] * n
        self.c_res = [0] * n      # R_OK, R_NXDOMAIN or R_NODATA
        self.c_addr = [bytearray(16 * k) for _ in range(n)]

    # ---- randomness (RFC 5452 section 9.2: unpredictable IDs and ports) ---------------------
    def _rand16(self):
        if self._urandom is not None:
            try:
                b = self._urandom(2)
                return (b[0] << 8) | b[1]
            except (OSError, NotImplementedError):
                self._urandom = None
        return self.stack.random16() ^ (self.stack.clock() & 0xFFFF)

    # ---- the public call ------------------------------------------------------------------
    def resolve(self, host, family=AF_INET):
        """The addresses of host (4-byte for AF_INET, 16-byte for AF_INET6); OSError with a
        getaddrinfo code when there are none (see the module doc)."""
        if family == AF_INET:
            qtype = w.TYPE_A
        elif family == AF_INET6:
            qtype = w.TYPE_AAAA
        else:
            raise gai_error(EAI_FAMILY)
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode()
        if self.busy:
            # another thread's (CPython) resolution holds the buffers: one at a time
            self.stack.wait(self._free, None)
        self.busy = True
        try:
            return self._resolve(host, qtype)
        finally:
            self.busy = False

    def _free(self):
        return not self.busy

    def _resolve(self, host, qtype):
        if self.qbuf is None:
            self._alloc()
        if not host or w.encode_name(self.scratch, 0, host) < 0 or is_invalid(host):
            raise gai_error(EAI_NONAME)
        if is_localhost(host):
            return [LOOPBACK4 if qtype == w.TYPE_A else LOOPBACK6]
        absolute = host[len(host) - 1] == "."
        names = [host]
        if self.search and not absolute:
            s = host + "." + self.search
            if "." in host:
                names.append(s)
            else:
                names.insert(0, s)
        err = EAI_NONAME
        for name in names:
            if w.encode_name(self.qname, 0, name) < 0:
                continue  # too long with the search domain appended
            r = self._lookup(qtype)
            if r == R_OK:
                return self._result(qtype)
            if r == R_NODATA:
                err = EAI_NODATA
            elif r != R_NXDOMAIN:
                if err == EAI_NONAME or err == EAI_NODATA:
                    err = EAI_FAIL if r == R_BROKEN or not self.servers else EAI_AGAIN
        raise gai_error(err)

    def _result(self, qtype):
        k = 4 if qtype == w.TYPE_A else 16
        out = []
        i = 0
        while i < self.nfound:
            out.append(bytes(self.found[i * k:(i + 1) * k]))
            i += 1
        return out

    # ---- the cache ------------------------------------------------------------------------
    def _cached(self, qtype):
        """The cached outcome for self.qname (R_OK with self.found, R_NXDOMAIN, R_NODATA),
        or -1."""
        n = w.skip_name(self.qname, 0, w.MAX_NAME)
        now = self.stack.clock()
        i = 0
        while i < len(self.c_exp):
            if self.c_exp[i] and self.c_type[i] == qtype and \
                    w.name_eq(self.c_name[i], self.c_nlen[i], self.qname, n):
                if self.c_exp[i] <= now:
                    self.c_exp[i] = 0  # expired: its TTL bounds how long it is used
                    return -1
                self.nfound = self.c_naddr[i]
                self.found[0:16 * self.nfound] = self.c_addr[i][0:16 * self.nfound]
                return self.c_res[i]
            i += 1
        return -1

    def _store(self, qtype, r):
        """Keep the outcome r just found for the asked name, for min(TTL, DNS_MAX_TTL_S);
        a negative one for the SOA's negative TTL (RFC 2308 5), not at all without one."""
        ttl = self.ttl
        cap = self.stack.config["DNS_MAX_TTL_S"]
        if ttl > cap:
            ttl = cap
        m = len(self.c_exp)
        if ttl <= 0 or m == 0:
            return
        now = self.stack.clock()
        # a free or expired slot, else the one expiring first
        best = 0
        i = 0
        while i < m:
            e = self.c_exp[i]
            if e == 0 or e <= now:
                best = i
                break
            if e < self.c_exp[best]:
                best = i
            i += 1
        n = w.skip_name(self.qname, 0, w.MAX_NAME)
        self.c_name[best][0:n] = self.qname[0:n]
        self.c_nlen[best] = n
        self.c_type[best] = qtype
        self.c_naddr[best] = self.nfound
        self.c_res[best] = r
        self.c_addr[best][0:16 * self.nfound] = self.found[0:16 * self.nfound]
        self.c_exp[best] = now + ttl * 1000

    # ---- one name -------------------------------------------------------------------------
    def _lookup(self, qtype):
        """self.qname's addresses of qtype into self.found: R_OK, or why not."""
        st = self.stats
        st.queries += 1
        r = self._cached(qtype)
        if r >= 0:
            st.cache_hits += 1
            return r
        if not self.servers:
            return R_FAIL
        # the name asked on the wire changes as CNAMEs are chased; the cache keeps the first
        asked = bytearray(self.qname)
        depth = self.stack.config["DNS_CNAME_DEPTH"]
        self.ttl = 0x7FFFFFFF
        r = R_FAIL
        hop = 0
        while True:
            r = self._ask(qtype)
            if r != R_CHASE:
                break
            hop += 1
            if hop > depth:
                st.cname_too_deep += 1
                r = R_BROKEN
                break
            self.qname[0:self.tlen] = self.target[0:self.tlen]
        self.qname[0:len(asked)] = asked
        if r == R_OK or r == R_NXDOMAIN or r == R_NODATA:
            self._store(qtype, r)
        if r == R_NXDOMAIN:
            st.nxdomain += 1
        elif r == R_NODATA:
            st.nodata += 1
        return r

    def _ask(self, qtype):
        """Ask each server in turn, DNS_ATTEMPTS rounds, until one gives a usable answer."""
        st = self.stats
        worst = R_TIMEOUT
        a = 0
        attempts = self.stack.config["DNS_ATTEMPTS"]
        while a < attempts:
            for srv in self.servers:
                r = self._udp(srv, qtype)
                if r == R_TRUNC:
                    st.truncated += 1
                    r = self._tcp(srv, qtype)
                if r == R_OK or r == R_NXDOMAIN or r == R_NODATA or r == R_CHASE:
                    return r
                if r == R_BROKEN or worst == R_TIMEOUT:
                    worst = r
            a += 1
        return worst

    def _query(self, qtype):
        """A new query (fresh ID) in qbuf[2:]; its ID and length."""
        qid = self._rand16()
        n = w.skip_name(self.qname, 0, w.MAX_NAME)
        ln = w.build_query(self.qbuf, 2, qid, self.qname, n, qtype)
        w.put16(self.qbuf, 0, ln)
        return qid, ln

    def _udp(self, srv, qtype):
        st = self.stats
        stack = self.stack
        s = stack.socket(so.AF_INET, so.SOCK_DGRAM)
        try:
            self._bind_random(s)
            qid, ln = self._query(qtype)
            # connected: only the server's address and port 53 reach this socket (RFC 5452
            # 9.1; anything else is UDP's rx_no_port), and its ICMP port unreachable does too
            # (RFC 1122 4.1.3.3), so a server that is not running fails at once
            try:
                s.connect((ip4.ntoa(srv, 0), w.PORT))
                s.send(memoryview(self.qbuf)[2:2 + ln])
            except OSError:
                return R_FAIL  # no route to this server, no buffer: the next one
            st.tx_udp += 1
            deadline = stack.clock() + stack.config["DNS_TIMEOUT_MS"]
            while True:
                rest = deadline - stack.clock()
                if rest <= 0:
                    st.timeouts += 1
                    return R_TIMEOUT
                s.settimeout(rest / 1000.0)
                try:
                    n = s.recv_into(self.rbuf)
                except Timeout:
                    st.timeouts += 1
                    return R_TIMEOUT
                except OSError:
                    st.refused += 1  # ECONNREFUSED: no name server there
                    return R_FAIL
                r = self._parse(n, qid, qtype, True)
                if r >= 0:
                    return r
        finally:
            s.close()

    def _bind_random(self, s):
        """RFC 5452 section 9.2 / RFC 6056: a random source port from the ephemeral range."""
        cfg = self.stack.config
        lo = cfg["EPHEMERAL_LOW"]
        span = cfg["EPHEMERAL_HIGH"] - lo + 1
        i = 0
        while i < BIND_TRIES:
            try:
                s.bind(("", lo + self._rand16() % span))
                return
            except OSError as e:
                if e.args[0] != EADDRINUSE:
                    raise
            i += 1
        s.bind(("", 0))

    def _tcp(self, srv, qtype):
        """The same question over TCP (RFC 1035 4.2.2: a two-octet length, then the message)."""
        st = self.stats
        stack = self.stack
        try:
            s = stack.socket(so.AF_INET, so.SOCK_STREAM)
        except OSError:
            st.tcp_failed += 1
            return R_FAIL
        try:
            deadline = stack.clock() + stack.config["DNS_TIMEOUT_MS"]
            s.settimeout(stack.config["DNS_TIMEOUT_MS"] / 1000.0)
            s.connect((ip4.ntoa(srv, 0), w.PORT))
            qid, ln = self._query(qtype)
            s.sendall(memoryview(self.qbuf)[0:2 + ln])
            st.tx_tcp += 1
            if not self._recv_exact(s, 2, deadline):
                st.tcp_failed += 1
                return R_FAIL
            n = w.u16(self.rbuf, 0)
            if n > len(self.rbuf):
                st.rx_too_big += 1
                return R_BROKEN
            if not self._recv_exact(s, n, deadline):
                st.tcp_failed += 1
                return R_FAIL
            r = self._parse(n, qid, qtype, False)
            return r if r >= 0 else R_BROKEN
        except OSError:
            st.tcp_failed += 1
            return R_FAIL
        finally:
            s.close()

    def _recv_exact(self, s, n, deadline):
        mv = memoryview(self.rbuf)
        got = 0
        while got < n:
            rest = deadline - self.stack.clock()
            if rest <= 0:
                return False
            s.settimeout(rest / 1000.0)
            k = s.recv_into(mv[got:n])
            if k == 0:
                return False
            got += k
        return True

    # ---- one answer -----------------------------------------------------------------------
    def _parse(self, n, qid, qtype, udp):
        """Check rbuf[0:n] against our question and take what it answers: an R_* outcome,
        or -1 for a message to drop (counted) while waiting on (its TTLs forgotten)."""
        ttl = self.ttl
        r = self._check(n, qid, qtype, udp)
        if r < 0:
            self.ttl = ttl
        return r

    def _check(self, n, qid, qtype, udp):
        st = self.stats
        b = self.rbuf
        if n < w.HDR_LEN:
            st.rx_short += 1
            return -1
        flags = w.u16(b, w.OFF_FLAGS)
        if not (flags & w.QR) or (flags & w.OPCODE_MASK):
            st.rx_not_response += 1
            return -1
        if w.u16(b, w.OFF_ID) != qid:
            st.rx_bad_id += 1
            return -1
        # RFC 5452 9.1: the question must be ours (name, type and class)
        qn = w.skip_name(self.qname, 0, w.MAX_NAME)
        if w.u16(b, w.OFF_QDCOUNT) != 1:
            st.rx_bad_question += 1
            return -1
        ln = w.read_name(b, w.HDR_LEN, n, self.scratch)
        o = w.skip_name(b, w.HDR_LEN, n)
        if ln < 0 or o < 0 or o + 4 > n:
            st.rx_malformed += 1
            return -1
        if not w.name_eq(self.scratch, ln, self.qname, qn) or w.u16(b, o) != qtype or \
                w.u16(b, o + 2) != w.CLASS_IN:
            st.rx_bad_question += 1
            return -1
        o += 4
        if udp and (flags & w.TC):
            return R_TRUNC  # RFC 2181 9: a truncated answer is not used; ask over TCP
        rcode = flags & w.RCODE_MASK
        if rcode != w.RCODE_NOERROR and rcode != w.RCODE_NXDOMAIN:
            st.rx_server_fail += 1
            return R_FAIL
        # the CNAME chain from the question's name, within the answer section
        self.target[0:qn] = self.qname[0:qn]
        self.tlen = qn
        an = w.u16(b, w.OFF_ANCOUNT)
        depth = self.stack.config["DNS_CNAME_DEPTH"]
        start = o
        hops = 0
        moved = True
        while moved:
            moved = False
            o = start
            i = 0
            while i < an:
                p = self._rr(b, o, n)
                if p < 0:
                    st.rx_malformed += 1
                    return -1
                if self._rr_type == w.TYPE_CNAME and self._rr_owner_is_target():
                    ln = w.read_name(b, p - self._rr_len, n, self.scratch)
                    if ln < 0:
                        st.rx_malformed += 1
                        return -1
                    hops += 1
                    if hops > depth:
                        st.cname_too_deep += 1
                        return R_BROKEN
                    self.target[0:ln] = self.scratch[0:ln]
                    self.tlen = ln
                    self._take_ttl()
                    st.cname_followed += 1
                    moved = True
                o = p
                i += 1
        # the addresses of the chain's end
        k = 4 if qtype == w.TYPE_A else 16
        cap = len(self.found) // 16
        self.nfound = 0
        minttl = self.ttl
        o = start
        i = 0
        while i < an:
            p = self._rr(b, o, n)
            if self._rr_type == qtype and self._rr_owner_is_target():
                if self._rr_len != k:
                    st.rx_malformed += 1
                    return -1
                if self.nfound < cap:
                    j = 0
                    while j < k:
                        self.found[self.nfound * 16 + j] = b[p - k + j]
                        j += 1
                    self.nfound += 1
                    self._take_ttl()
                else:
                    st.addrs_dropped += 1
            o = p
            i += 1
        if self.nfound == 0:
            self.ttl = minttl
        st.rx_answers += 1
        if self.nfound:
            # compact: the cache and _result read k bytes per address at 16-byte strides
            if k == 4:
                j = 1
                while j < self.nfound:
                    self.found[j * 4:j * 4 + 4] = self.found[j * 16:j * 16 + 4]
                    j += 1
            return R_OK
        if rcode != w.RCODE_NXDOMAIN and (self.tlen != qn or not w.name_eq(
                self.target, self.tlen, self.qname, qn)):
            return R_CHASE  # RFC 1034 5.3.3: the chain ends outside this answer: ask for it
        soa = self._soa_ttl(b, o, n)  # RFC 2308 5: how long the absence may be cached
        if soa < self.ttl:
            self.ttl = soa
        return R_NXDOMAIN if rcode == w.RCODE_NXDOMAIN else R_NODATA

    def _soa_ttl(self, b, o, n):
        """min(TTL, MINIMUM) of the authority section's SOA (RFC 2308 5) at b[o], 0 when
        there is none or it is malformed (then the negative answer is not cached)."""
        ns = w.u16(b, w.OFF_NSCOUNT)
        i = 0
        while i < ns:
            p = self._rr(b, o, n)
            if p < 0:
                return 0
            if self._rr_type == w.TYPE_SOA:
                q = w.skip_name(b, p - self._rr_len, p)    # MNAME
                q = w.skip_name(b, q, p) if q > 0 else -1  # RNAME
                if q < 0 or q + 20 != p:
                    return 0
                m = (b[q + 16] << 24) | (b[q + 17] << 16) | (b[q + 18] << 8) | b[q + 19]
                return m if m < self._rr_ttl else self._rr_ttl
            o = p
            i += 1
        return 0

    def _rr(self, b, o, n):
        """Parse the resource record at b[o]: its owner into _owner, type, TTL and rdata
        length into self._rr_*; returns the offset after it, or -1 when malformed."""
        ln = w.read_name(b, o, n, self._owner)
        p = w.skip_name(b, o, n)
        if ln < 0 or p < 0 or p + 10 > n:
            return -1
        self._rr_olen = ln
        self._rr_type = w.u16(b, p) if w.u16(b, p + 2) == w.CLASS_IN else 0
        t = (b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]
        self._rr_ttl = t if t < 0x80000000 else 0  # RFC 2181 8: the top bit set means zero
        self._rr_len = w.u16(b, p + 8)
        p += 10 + self._rr_len
        if p > n:
            return -1
        return p

    def _rr_owner_is_target(self):
        return w.name_eq(self._owner, self._rr_olen, self.target, self.tlen)

    def _take_ttl(self):
        if self._rr_ttl < self.ttl:
            self.ttl = self._rr_ttl
