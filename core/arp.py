"""ARP cache and protocol (RFC 826, RFC 1122 section 2.3.2.1).

Fixed table of ARP_ENTRIES. Each entry is FREE, INCOMPLETE (request sent; up to ARP_QUEUE
packets wait, the oldest dropped first, and all neighbours together hold at most
ARP_PENDING_PBUFS buffers, so answers to strangers that never answer ARP cannot hold the
pool: issue 8, hole 3), REACHABLE, or STALE (past its age: still used, re-validated by a
broadcast request on a timer; dropped when that goes unanswered), or PERMANENT (add_static:
never aged, evicted or changed by ARP traffic). Requests for our own address get a reply built
in place.

Poisoning is limited to what RFC 826's merge allows: a known entry is updated by any ARP
packet from its address; a new entry is made only from a request for us by an on-link sender.
Unsolicited replies, senders that cannot be a host (group MAC, our own, broadcast, multicast,
loopback or reserved addresses) and off-link senders teach nothing, each counted. Another
host claiming our address is a conflict (RFC 5227 2.4): we defend it with one announcement
at most every DEFEND_INTERVAL.
"""
from ustack.core.compat import const
from ustack.core.route import GEN_MASK
from ustack.core.stats import Counters
from ustack.core.wire import arp as wa
from ustack.core.wire import ethernet as eth

FREE = const(0)
INCOMPLETE = const(1)
REACHABLE = const(2)
STALE = const(3)
RESOLVING = const(1)   # _slot modes
LEARNING = const(2)
PERMANENT = const(4)

ARP_COUNTERS = (
    "rx_requests", "rx_replies", "tx_requests", "tx_replies", "rx_malformed", "rx_not_for_us",
    "rx_bad_sender", "learned", "evicted", "timeouts", "pending_dropped", "pending_sent",
    "gratuitous_sent", "no_buffer", "table_full", "rx_unsolicited", "rx_off_link",
    "rx_conflict", "defended", "host_unreach", "learn_skipped",
)

DEFEND_INTERVAL_MS = const(10000)  # RFC 5227 section 1.1

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
        self.pending = [None] * n   # head of a chain through PacketBuffer.next, oldest first
        self.queued = [0] * n
        self.queue_max = config["ARP_QUEUE"]
        self.last_defend = -1
        self.stats = Counters(ARP_COUNTERS)
        self.gen = 0  # bumped when an entry is freed or (re)learned (route.RouteCache)

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

    def _slot(self, mode=0):
        """A free entry, else one evicted (counted) by mode: LEARNING (a request's sender):
        only an entry learned from another asker that nothing has used since, the oldest;
        RESOLVING (a packet to a new neighbour): such an entry, else the oldest INCOMPLETE
        one; otherwise the least recently used. RFC 6583 7.1: the neighbours in use come
        first, so neither packets to ever new addresses (a flood's answers to random on-link
        sources) nor requests from them can push them out. -1 (counted) when none may go."""
        best = -1
        first = -1
        idle = -1
        used = self.used
        i = 0
        while i < self.size:
            s = self.state[i]
            if s == FREE:
                return i
            if s == INCOMPLETE:
                if first < 0 or used[i] < used[first]:
                    first = i
            elif s != PERMANENT:
                if best < 0 or used[i] < used[best]:
                    best = i
                if used[i] < 0 and (idle < 0 or self.expires[i] < self.expires[idle]):
                    idle = i
            i += 1
        if idle >= 0 and mode != 0:
            best = idle
        elif mode == LEARNING:
            self.stats.learn_skipped += 1
            return -1
        elif best < 0 or (mode == RESOLVING and first >= 0):
            best = first
            if best < 0:
                self.stats.table_full += 1
                return -1
        self._clear(best)
        self.stats.evicted += 1
        return best

    def drop_pending(self):
        """Drop (and count) every packet waiting for a reply: the stack is stopping, and its
        exit counters should show them, not a pool short of them."""
        i = 0
        while i < self.size:
            self._drop_queue(i)
            i += 1

    def _clear(self, i):
        self.state[i] = FREE
        self.gen = (self.gen + 1) & GEN_MASK
        self._drop_queue(i)

    def _drop_queue(self, i):
        p = self.pending[i]
        self.pending[i] = None
        self.npending -= self.queued[i]
        self.queued[i] = 0
        while p is not None:
            nx = p.next
            self.stats.pending_dropped += 1
            self.stack.free(p)
            p = nx

    def _unreachable(self, i):
        """Entry i was never answered: tell the sockets whose packets waited on it that the
        host is unreachable (RFC 1122 2.4: the link layer reports delivery failure to IP;
        Linux: a connect() fails with EHOSTUNREACH after ~3 s, not after the SYN retries)."""
        p = self.pending[i]
        hl = self.iface.hlen
        ipv4 = self.stack.ipv4
        while p is not None:
            if ipv4.host_unreachable(p.buf, p.off + hl):
                self.stats.host_unreach += 1
            p = p.next

    def _enqueue(self, i, pb):
        """pb waits for entry i's reply, behind what already waits. Over ARP_QUEUE per
        neighbour, or ARP_PENDING_PBUFS for all, the oldest waiting packet goes (like
        Linux's unres_qlen): a burst of fragments keeps its newest ones."""
        stack = self.stack
        limit = self.pending_max
        total = self.npending
        if (self.queued[i] >= self.queue_max or total >= limit) and self.pending[i] is not None:
            old = self.pending[i]
            self.pending[i] = old.next
            self.queued[i] -= 1
            self.npending -= 1
            self.stats.pending_dropped += 1
            stack.free(old)
        elif total >= limit:
            self.stats.pending_dropped += 1
            stack.free(pb)
            return
        pb.next = None
        p = self.pending[i]
        if p is None:
            self.pending[i] = pb
        else:
            while p.next is not None:
                p = p.next
            p.next = pb
        self.queued[i] += 1
        self.npending += 1

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
    def resolve(self, pb, nexthop, rc=None):
        """Fill the destination MAC of the frame at pb.buf[pb.off]. True: send it now.
        False: it waits for the reply (see _enqueue) or was dropped (counted). rc, a
        connection's RouteCache: its entry index while no entry changed since (gen)."""
        now = self.stack.now
        if rc is not None and rc.nb_gen == self.gen:
            i = rc.nb_idx
        else:
            i = self.find(nexthop, 0)
            if rc is not None and i >= 0:
                rc.nb_gen = self.gen
                rc.nb_idx = i
        if i >= 0:
            s = self.state[i]
            if s >= REACHABLE:
                self.used[i] = now
                if s == REACHABLE and now >= self.expires[i]:
                    # RFC 1122 2.3.2.1: re-validate an old entry; keep using it meanwhile.
                    # The retries and the time-out run from the stack's timer.
                    self.state[i] = STALE
                    self.retries[i] = 0
                    self.expires[i] = now + self.retry_ms
                    self.stack.timer_at(self.expires[i])
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
            self._enqueue(i, pb)  # INCOMPLETE: wait behind the others
            return False
        i = self._slot(RESOLVING)
        if i < 0:
            self.stack.free(pb)
            return False
        e = self.ip[i]
        e[0] = nexthop[0]
        e[1] = nexthop[1]
        e[2] = nexthop[2]
        e[3] = nexthop[3]
        self.state[i] = INCOMPLETE
        self.gen = (self.gen + 1) & GEN_MASK
        self.retries[i] = 0
        self.expires[i] = now + self.retry_ms
        self.used[i] = now
        self.pending[i] = None
        self.queued[i] = 0
        self._enqueue(i, pb)
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

    def _ours(self, b, o):
        m = self.iface.mac
        return b[o] == m[0] and b[o + 1] == m[1] and b[o + 2] == m[2] and b[o + 3] == m[3] and \
            b[o + 4] == m[4] and b[o + 5] == m[5]

    def _defend(self):
        """RFC 5227 2.4 (b): answer a claim on our address with one broadcast announcement,
        unless we did so within DEFEND_INTERVAL (two hosts must not argue forever)."""
        now = self.stack.now
        if self.last_defend >= 0 and now - self.last_defend < DEFEND_INTERVAL_MS:
            return
        self.last_defend = now
        self.stats.defended += 1
        self.announce()

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
        dh = self.stack.dhcp
        if dh is not None and dh.state == 4 and dh.iface is iface:  # 4: PROBING
            dh.arp_input(b, off)  # RFC 5227 2.1.1: the DHCP client probes an address
        # A sender claiming a broadcast/multicast MAC, our own address, or an address no
        # host can have (broadcast, multicast, reserved, loopback) is bogus.
        spa = off + wa.SPA
        s0 = b[spa]
        if iface.ip[0] != 0 and iface.is_local(b, spa) and not self._ours(b, off + wa.SHA):
            st.rx_conflict += 1
            self._defend()
            self.stack.free(pb)
            return
        if (b[off + wa.SHA] & 1) or iface.is_local(b, spa) or s0 >= 224 or s0 == 127 or \
                self.stack.ipv4.is_broadcast(b, spa):
            st.rx_bad_sender += 1
            self.stack.free(pb)
            return
        for_us = iface.is_local(b, off + wa.TPA) and iface.ip[0] != 0
        # RFC 826 "merge": update the sender if known; add it if the packet is for us. Only
        # a request makes a new entry (we will talk to the asker); a reply nobody asked for
        # would let anyone fill the cache, and an off-link sender is never a next hop.
        # Sender 0.0.0.0 is an RFC 5227 probe: nothing to learn.
        if s0 != 0:
            i = self.find(b, spa)
            if i >= 0:
                if self.state[i] != PERMANENT:
                    self._learn(i, b, spa, b, off + wa.SHA)
            elif for_us:
                if op != wa.OP_REQUEST:
                    st.rx_unsolicited += 1
                elif not iface.on_link(b, spa):
                    st.rx_off_link += 1
                else:
                    i = self._slot(LEARNING)
                    if i >= 0:
                        self._learn(i, b, spa, b, off + wa.SHA)
                        self.used[i] = -1     # an asker, not yet a neighbour in use
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
        self.gen = (self.gen + 1) & GEN_MASK
        now = self.stack.now
        self.expires[i] = now + self.max_age
        self.used[i] = now
        p = self.pending[i]
        self.pending[i] = None
        self.npending -= self.queued[i]
        self.queued[i] = 0
        while p is not None:
            nx = p.next
            b = p.buf
            o = p.off
            k = 0
            while k < 6:
                b[o + k] = m[k]
                b[o + 6 + k] = self.iface.mac[k]
                k += 1
            self.stats.pending_sent += 1
            self.iface.transmit(p)
            p = nx

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
                        self._unreachable(i)
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
