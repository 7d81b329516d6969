"""IPv6 reassembly (RFC 8200 section 4.5) in REASS6_SLOTS fixed slots.

A datagram is identified by its source, destination and 32-bit Identification (RFC 8200
4.5). Each slot owns a buffer of UNFRAG_ROOM + REASS_SIZE bytes and a bitmap of received
8-byte blocks: the fragmentable part lands at UNFRAG_ROOM + offset, the first fragment's
unfragmentable part (the IPv6 header and the extension headers before the Fragment header)
right in front of it, so the finished datagram is contiguous and handed up in the slot
itself (a PacketBuffer not from the pool; freeing it releases the slot) as if it had never
been fragmented: the Fragment header gone, the Next Header that named it now naming what
followed it, the Payload Length that of the whole.

Slots are made on the first fragment (a stack that never sees one spends no memory on
them). The walk (core/wire/ipv6.py) has already answered the fragments that cannot be
(bad length: Parameter Problem code 0 at the Payload Length; beyond 65535: at the Fragment
Offset; RFC 7112 incomplete first fragment: code 3) and handed atomic fragments (RFC 6946)
up as unfragmented datagrams. What is left here, each drop with its own counter:
- `overlap`: RFC 5722: a fragment overlapping another of the same datagram drops the whole
  datagram silently; the slot stays `dead` until its timeout so the fragments still in
  flight are dropped too (`dead_fragments`), never reassembled into something else.
  An exact duplicate (same offset, length and bytes: the network duplicated it, RFC 8200
  4.5) is dropped alone (`duplicate`).
- `too_big`: beyond REASS_SIZE (our bound, config); `malformed`: lengths that contradict
  each other (two last fragments, data beyond the last one's end).
- `timeouts`: not complete within REASS6_TIMEOUT_MS (RFC 8200 4.5: 60 s); when the first
  fragment had come, its source gets Time Exceeded code 1 quoting it (`time_exceeded_sent`).
- `ecn_mixed`: RFC 3168 5.3 (for IPv6 as for IPv4): fragments mixing Not-ECT with ECT or
  CE drop the datagram; CE on any fragment marks the whole datagram CE.
- `evicted`: every slot busy: the oldest datagram makes room (a flood of first fragments
  cannot hold every slot).
"""
from ustack.core.compat import const
from ustack.core.buf import PacketBuffer
from ustack.core.stats import Counters
from ustack.core.wire import ipv6 as w
from ustack.core.wire import icmp6 as wi
from ustack.core.wire.fields import copy
from ustack.core.reass import ECN_SEEN_CE, mark, complete, ecn_mixed

REASS6_COUNTERS = ("fragments", "reassembled", "timeouts", "time_exceeded_sent", "no_slot",
                   "too_big", "malformed", "overlap", "dead_fragments", "duplicate", "evicted",
                   "unfrag_too_long", "ecn_mixed")

# room for the unfragmentable part: the IPv6 header and at most EXT_MAX_BYTES of extension
# headers (the walk's bound) in front of the fragmentable part
UNFRAG_ROOM = const(552)


class Slot6(PacketBuffer):
    def __init__(self, size, index):
        PacketBuffer.__init__(self, UNFRAG_ROOM + size, index)
        self.src = bytearray(16)
        self.dst = bytearray(16)
        self.id_hi = 0        # the 32-bit Identification in 16-bit halves (small ints on
        self.id_lo = 0        # 32-bit MicroPython)
        self.total = -1       # the fragmentable part's length, once the last fragment came
        self.maxend = 0       # furthest byte any fragment reached
        self.ulen = 0         # the first fragment's unfragmentable part (0: not yet)
        self.iface = None     # where the first fragment came in (for the Time Exceeded)
        self.expires = 0
        self.busy = False     # collecting fragments
        self.dead = False     # RFC 5722: overlapped; its fragments dropped until it expires
        self.ecn_seen = 0     # 1 << codepoint for every fragment's ECN field (RFC 3168 5.3)
        self.bitmap = bytearray((size + 63) // 64)


class Reassembly6:
    def __init__(self, stack, config):
        self.stack = stack
        self.max = config["REASS_SIZE"]
        self.timeout = config["REASS6_TIMEOUT_MS"]
        self.nslots = config["REASS6_SLOTS"]
        self.slots = []       # made on the first fragment
        self.stats = Counters(REASS6_COUNTERS)

    def _find(self, b, off, p):
        """The slot collecting the datagram of the fragment at b[off] (Fragment header at
        b[p]), a new one, or None."""
        hi = (b[p + w.FRAG_ID] << 8) | b[p + w.FRAG_ID + 1]
        lo = (b[p + w.FRAG_ID + 2] << 8) | b[p + w.FRAG_ID + 3]
        slots = self.slots
        if not slots:
            if self.nslots == 0:
                return None
            self.slots = slots = [Slot6(self.max, -200 - i) for i in range(self.nslots)]
        for s in slots:
            if s.busy and s.id_lo == lo and s.id_hi == hi and \
                    _eq16(s.src, b, off + w.SRC) and _eq16(s.dst, b, off + w.DST):
                return s
        free = None
        oldest = None
        for s in slots:
            if not s.in_use:
                if not s.busy:
                    free = s
                    break
                if oldest is None or s.expires < oldest.expires:
                    oldest = s
        if free is None:
            if oldest is None:
                return None   # every slot holds a finished datagram nobody read yet
            self.stats.evicted += 1
            free = oldest
        s = free
        s.busy = True
        s.dead = False
        s.id_hi = hi
        s.id_lo = lo
        copy(s.src, 0, b, off + w.SRC, 16)
        copy(s.dst, 0, b, off + w.DST, 16)
        s.total = -1
        s.maxend = 0
        s.ulen = 0
        s.ecn_seen = 0
        s.iface = None
        s.expires = self.stack.now + self.timeout
        bm = s.bitmap
        i = 0
        while i < len(bm):
            bm[i] = 0
            i += 1
        self.stack.timer_at(s.expires)
        return s

    def input(self, iface, pb, off, res):
        """Take a fragment (owning pb; the walk's result res locates its Fragment header).
        Returns the completed slot (pb.off/pb.n: the datagram) or None."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        st.fragments += 1
        p = res[w.R_FRAG]
        end_pkt = off + w.HDR_LEN + ((b[off + 4] << 8) | b[off + 5])
        fw = (b[p + w.FRAG_OFF] << 8) | b[p + w.FRAG_OFF + 1]
        fo = fw & 0xFFF8
        mf = fw & w.FRAG_M
        d = p + w.FRAG_HDR_LEN
        plen = end_pkt - d
        end = fo + plen
        if plen <= 0:
            st.malformed += 1
            stack.free(pb)
            return None
        if end > self.max:
            st.too_big += 1
            stack.free(pb)
            return None
        ulen = p - off
        if fo == 0 and ulen > UNFRAG_ROOM:
            st.unfrag_too_long += 1
            stack.free(pb)
            return None
        s = self._find(b, off, p)
        if s is None:
            st.no_slot += 1
            stack.free(pb)
            return None
        if s.dead:
            st.dead_fragments += 1   # RFC 5722: the rest of an overlapped datagram
            stack.free(pb)
            return None
        sb = s.buf
        bm = s.bitmap
        # the lengths must agree: one end, nothing beyond it
        if (not mf and ((s.total >= 0 and s.total != end) or s.maxend > end)) or \
                (mf and s.total >= 0 and end > s.total):
            st.malformed += 1
            stack.free(pb)
            s.busy = False
            s.iface = None
            return None
        k = fo >> 3
        last = (end + 7) >> 3
        seen = 0
        while k < last:
            if bm[k >> 3] & (1 << (k & 7)):
                seen += 1
            k += 1
        if seen:
            if seen == last - (fo >> 3) and _same(sb, UNFRAG_ROOM + fo, b, d, plen):
                st.duplicate += 1   # RFC 8200 4.5: the network duplicated it
                stack.free(pb)
                return None
            # RFC 5722 / RFC 8200 4.5: the whole datagram goes, silently
            st.overlap += 1
            stack.free(pb)
            s.dead = True
            s.iface = None
            return None
        if fo == 0:
            # the unfragmentable part, right in front of the data; the Next Header that
            # named the Fragment header names what followed it (RFC 8200 4.5)
            copy(sb, UNFRAG_ROOM - ulen, b, off, ulen)
            sb[UNFRAG_ROOM - ulen + _names(b, off, p)] = b[p]
            s.ulen = ulen
            s.iface = iface
        copy(sb, UNFRAG_ROOM + fo, b, d, plen)
        s.ecn_seen |= 1 << ((b[off + 1] >> 4) & 3)
        stack.free(pb)
        if not mf:
            s.total = end
        if end > s.maxend:
            s.maxend = end
        mark(bm, fo >> 3, last)
        if s.total < 0 or not s.ulen or not complete(bm, s.total):
            return None
        h = UNFRAG_ROOM - s.ulen
        seen = s.ecn_seen
        if ecn_mixed(seen):
            st.ecn_mixed += 1   # RFC 3168 5.3: Not-ECT beside ECT/CE MUST be dropped
            s.busy = False
            s.iface = None
            return None
        if seen & ECN_SEEN_CE:
            sb[h + 1] |= 0x30   # RFC 3168 5.3: a CE mark on any fragment survives
        pl = s.ulen - w.HDR_LEN + s.total
        if pl > 65535:
            # RFC 8200 4.5: no Payload Length can say it (the walk checked the offset alone)
            st.too_big += 1
            s.busy = False
            s.iface = None
            return None
        sb[h + 4] = pl >> 8
        sb[h + 5] = pl & 0xFF
        s.busy = False
        s.iface = None
        s.in_use = True
        s.off = h
        s.n = w.HDR_LEN + pl
        st.reassembled += 1
        return s

    def tick(self, now):
        nxt = 0
        for s in self.slots:
            if s.busy:
                if now >= s.expires:
                    self.stats.timeouts += 1
                    s.busy = False
                    if s.ulen and not s.dead and s.iface is not None:
                        # RFC 8200 4.5: Time Exceeded code 1 to the source, quoting the
                        # first fragment's headers and the data that came with it
                        h = UNFRAG_ROOM - s.ulen
                        n = s.ulen
                        k = 0
                        while k < (s.maxend + 7) >> 3 and s.bitmap[k >> 3] & (1 << (k & 7)):
                            k += 1
                        n += k << 3
                        self.stats.time_exceeded_sent += 1
                        self.stack.icmp6.reass_timeout(s.iface, s.buf, h, n)
                    s.iface = None
                elif nxt == 0 or s.expires < nxt:
                    nxt = s.expires
        return nxt


def _names(b, off, p):
    """The offset (from the IPv6 header at b[off]) of the Next Header field that names the
    header at b[p]: the chain in front of it was walked already (core/wire/ipv6.py)."""
    nhp = w.NEXT_HDR
    nh = b[off + w.NEXT_HDR]
    q = off + w.HDR_LEN
    while q < p:
        nhp = q - off
        # an atomic Fragment header (RFC 6946) is 8 bytes; the options and routing headers
        # say their length in 8-byte units beyond the first 8 (RFC 8200 4.3, 4.4)
        hl = w.FRAG_HDR_LEN if nh == w.NH_FRAGMENT else (b[q + 1] + 1) << 3
        nh = b[q]
        q += hl
    return nhp


def _eq16(a, b, o):
    i = 0
    while i < 16:
        if a[i] != b[o + i]:
            return False
        i += 1
    return True


def _same(a, ao, b, bo, n):
    i = 0
    while i < n:
        if a[ao + i] != b[bo + i]:
            return False
        i += 1
    return True
