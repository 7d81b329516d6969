"""ARP cache and protocol (RFC 826, RFC 1122 section 2.3.2.1).

Fixed table of ARP_ENTRIES. Each entry is FREE, INCOMPLETE (request sent, one packet may wait),
REACHABLE, or STALE (past its age: still used, re-validated by a unicast-free broadcast request;
dropped when that goes unanswered), or PERMANENT (add_static: never aged, evicted or changed by
ARP traffic). Requests for our own address get a reply built in place.
At most ARP_PENDING_PBUFS packets wait for resolution at once (per interface): answers to
strangers that do not answer ARP cannot hold the packet-buffer pool (issue 8, hole 3).
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
from ustack.core.wire import arp as wa
from ustack.core.wire import ethernet as eth

FREE = const(0)
INCOMPLETE = const(1)
REACHABLE = const(2)
STALE = const(3)
PERMANENT = const(4)

ARP_COUNTERS = (
    "rx_requests", "rx_replies", "tx_requests", "tx_replies", "rx_malformed", "rx_not_for_us",
    "rx_bad_sender", "learned", "evicted", "timeouts", "pending_dropped", "pending_sent",
    "gratuitous_sent", "no_buffer", "table_full",
)

ZERO_MAC = b"\x00\x00\x00\x00\x00\x00"


class ArpCache:
    def __init__(self, iface, config):
        self.iface = iface
        self.stack = iface.stack
        n = config["ARP_ENTRIES"]
        self.size = n
        self.max_age = config["ARP_MAX_AGE_MS"]
        self.retry_ms = config["ARP_RETRY_MS"]
        self.max_retries = config["ARP_MAX_RETRIES"]
        self.pending_max = config["ARP_PENDING_PBUFS"]
        self.npending = 0
        self.ip = [bytearray(4) for _ in range(n)]
        self.mac = [bytearray(6) for _ in range(n)]
        self.state = [FREE] * n
        self.expires = [0] * n   # REACHABLE: age limit; INCOMPLETE/STALE: next retry
        self.retries = [0] * n
        self.used = [0] * n
        self.pending = [None] * n
        self.stats = Counters(ARP_COUNTERS)

    # ---- lookup ---------------------------------------------------------------------------
    def find(self, a, o=0):
        ips = self.ip
        st = self.state
        i = 0
        while i < self.size:
            if st[i] != FREE:
                e = ips[i]
                if e[0] == a[o] and e[1] == a[o + 1] and e[2] == a[o + 2] and e[3] == a[o + 3]:
                    return i
            i += 1
        return -1

    def _slot(self):
        """A free entry, else the least recently used resolved one (evicted), else the first
        INCOMPLETE one; -1 (counted) when every entry is PERMANENT."""
        best = -1
        oldest = 0
        first = -1
        i = 0
        while i < self.size:
            s = self.state[i]
            if s == FREE:
                return i
            if s == INCOMPLETE:
                if first < 0:
                    first = i
            elif s != PERMANENT and (best < 0 or self.used[i] < oldest):
                best = i
                oldest = self.used[i]
            i += 1
        if best < 0:
            best = first
            if best < 0:
                self.stats.table_full += 1
                return -1
        self._clear(best)
        self.stats.evicted += 1
        return best

    def _clear(self, i):
        self.state[i] = FREE
        p = self.pending[i]
        if p is not None:
            self.pending[i] = None
            self.npending -= 1
            self.stats.pending_dropped += 1
            self.stack.free(p)

    def lookup(self, ip):
        """MAC for ip (bytes) if resolved, else None. For tests and tools."""
        i = self.find(ip, 0)
        if i >= 0 and self.state[i] >= REACHABLE:
            return bytes(self.mac[i])
        return None

    def entries(self):
        out = []
        for i in range(self.size):
            if self.state[i] != FREE:
                out.append((bytes(self.ip[i]), bytes(self.mac[i]), self.state[i]))
        return out

    def add_static(self, ip, mac):
        """A PERMANENT entry for ip (4 bytes) -> mac (6 bytes)."""
        i = self.find(ip, 0)
        if i < 0:
            i = self._slot()
            if i < 0:
                raise OSError(28, "ARP table full of static entries")  # ENOSPC
        self.state[i] = FREE  # _learn below counts it once and sends a waiting packet
        self._learn(i, ip, 0, mac, 0)
        self.state[i] = PERMANENT

    # ---- output side ----------------------------------------------------------------------
    def resolve(self, pb, nexthop):
        """Fill the destination MAC of the frame at pb.buf[pb.off]. True: send it now.
        False: it waits for the reply (one packet per neighbour; a newer one replaces it)."""
        now = self.stack.now
        i = self.find(nexthop, 0)
        if i >= 0:
            s = self.state[i]
            if s >= REACHABLE:
                self.used[i] = now
                if s == REACHABLE and now >= self.expires[i]:
                    # RFC 1122 2.3.2.1: re-validate an old entry; keep using it meanwhile
                    self.state[i] = STALE
                    self.retries[i] = 0
                    self.expires[i] = now + self.retry_ms
                    self._request(nexthop)
                b = pb.buf
                o = pb.off
                m = self.mac[i]
                src = self.iface.mac
                k = 0
                while k < 6:
                    b[o + k] = m[k]
                    b[o + 6 + k] = src[k]
                    k += 1
                return True
            # INCOMPLETE: queue this one instead of the older
            old = self.pending[i]
            if old is not None:
                self.stats.pending_dropped += 1
                self.stack.free(old)
            elif self.npending >= self.pending_max:
                self.stats.pending_dropped += 1
                self.stack.free(pb)
                return False
            else:
                self.npending += 1
            self.pending[i] = pb
            return False
        i = self._slot()
        if i < 0:
            self.stack.free(pb)
            return False
        e = self.ip[i]
        e[0] = nexthop[0]
        e[1] = nexthop[1]
        e[2] = nexthop[2]
        e[3] = nexthop[3]
        self.state[i] = INCOMPLETE
        self.retries[i] = 0
        self.expires[i] = now + self.retry_ms
        self.used[i] = now
        if self.npending < self.pending_max:
            self.pending[i] = pb
            self.npending += 1
        else:
            self.stats.pending_dropped += 1  # the pool is not for strangers' ARP to hold
            self.stack.free(pb)
        self.stack.timer_at(self.expires[i])
        self._request(nexthop)
        return False

    def _request(self, target):
        iface = self.iface
        pb = self.stack.alloc()
        if pb is None:
            self.stats.no_buffer += 1
            return
        b = pb.buf
        eth.write_header(b, 0, eth.BROADCAST, iface.mac, eth.ETH_P_ARP)
        wa.write(b, eth.HDR_LEN, wa.OP_REQUEST, iface.mac, iface.ip, ZERO_MAC, target)
        pb.off = 0
        pb.n = eth.HDR_LEN + wa.LEN
        self.stats.tx_requests += 1
        iface.transmit(pb)

    def announce(self):
        """Gratuitous ARP (RFC 5227 section 3): a request for our own address."""
        if self.iface.ip[0] == 0:
            return
        self._request(self.iface.ip)
        self.stats.gratuitous_sent += 1

    # ---- input side -----------------------------------------------------------------------
    def input(self, pb, off, n):
        st = self.stats
        b = pb.buf
        if n < wa.LEN or b[off] != 0 or b[off + 1] != wa.HTYPE_ETHERNET or \
                b[off + 2] != 0x08 or b[off + 3] != 0 or b[off + 4] != 6 or b[off + 5] != 4:
            st.rx_malformed += 1
            self.stack.free(pb)
            return
        op = (b[off + 6] << 8) | b[off + 7]
        if op == wa.OP_REQUEST:
            st.rx_requests += 1
        elif op == wa.OP_REPLY:
            st.rx_replies += 1
        else:
            st.rx_malformed += 1
            self.stack.free(pb)
            return
        iface = self.iface
        # A sender claiming a broadcast/multicast MAC or our own address is bogus.
        if (b[off + wa.SHA] & 1) or iface.is_local(b, off + wa.SPA):
            st.rx_bad_sender += 1
            self.stack.free(pb)
            return
        for_us = iface.is_local(b, off + wa.TPA) and iface.ip[0] != 0
        # RFC 826 "merge": update the sender if known; add it if the packet is for us.
        i = self.find(b, off + wa.SPA)
        if b[off + wa.SPA] != 0:
            if i >= 0:
                if self.state[i] != PERMANENT:
                    self._learn(i, b, off + wa.SPA, b, off + wa.SHA)
            elif for_us:
                i = self._slot()
                if i >= 0:
                    self._learn(i, b, off + wa.SPA, b, off + wa.SHA)
        if not for_us:
            st.rx_not_for_us += 1
            self.stack.free(pb)
            return
        if op != wa.OP_REQUEST:
            self.stack.free(pb)
            return
        # Reply in place: target <- sender, sender <- us, op <- reply.
        k = 0
        while k < 6:
            m = b[off + wa.SHA + k]
            b[off + wa.THA + k] = m
            b[k] = m                     # Ethernet destination: the requester
            b[off + wa.SHA + k] = iface.mac[k]
            b[6 + k] = iface.mac[k]
            k += 1
        k = 0
        while k < 4:
            b[off + wa.TPA + k] = b[off + wa.SPA + k]
            b[off + wa.SPA + k] = iface.ip[k]
            k += 1
        b[off + 7] = wa.OP_REPLY
        pb.off = 0
        pb.n = off + wa.LEN
        st.tx_replies += 1
        iface.transmit(pb)

    def _learn(self, i, ipb, io, macb, mo):
        e = self.ip[i]
        m = self.mac[i]
        k = 0
        while k < 4:
            e[k] = ipb[io + k]
            k += 1
        k = 0
        while k < 6:
            m[k] = macb[mo + k]
            k += 1
        if self.state[i] != REACHABLE:
            self.stats.learned += 1
        self.state[i] = REACHABLE
        now = self.stack.now
        self.expires[i] = now + self.max_age
        self.used[i] = now
        p = self.pending[i]
        if p is not None:
            self.pending[i] = None
            self.npending -= 1
            b = p.buf
            o = p.off
            k = 0
            while k < 6:
                b[o + k] = m[k]
                b[o + 6 + k] = self.iface.mac[k]
                k += 1
            self.stats.pending_sent += 1
            self.iface.transmit(p)

    # ---- timers ---------------------------------------------------------------------------
    def tick(self, now):
        """Retry or time out unresolved entries. Returns the next deadline (0 = none)."""
        nxt = 0
        i = 0
        while i < self.size:
            s = self.state[i]
            if s == INCOMPLETE or s == STALE:
                if now >= self.expires[i]:
                    if self.retries[i] >= self.max_retries:
                        self.stats.timeouts += 1
                        self._clear(i)
                        i += 1
                        continue
                    self.retries[i] += 1
                    self.expires[i] = now + self.retry_ms
                    self._request(self.ip[i])
                d = self.expires[i]
                if nxt == 0 or d < nxt:
                    nxt = d
            i += 1
        return nxt
