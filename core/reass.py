"""IPv4 reassembly (RFC 791 section 3.2, RFC 815 ideas) in REASS_SLOTS fixed slots.

Each slot owns a REASS_SIZE buffer and a bitmap of received 8-byte blocks. A datagram is
complete when its last fragment (MF=0) fixed the total and every block up to it is present.
The completed datagram is handed up in the slot itself (a PacketBuffer not from the pool);
freeing it releases the slot. Incomplete datagrams time out after REASS_TIMEOUT_MS (RFC 1122
3.3.2 suggests 60-120 s; embedded stacks use less); when fragment zero had come, the source
gets ICMP Time Exceeded, code 1 (RFC 1122 3.3.2, RFC 792), quoting that fragment's header.

What cannot be a datagram is dropped and counted: a fragment reaching beyond 65535 bytes
(ping of death: `oversize`), lengths that contradict each other (teardrop: `malformed`), an
overlap whose bytes differ from what came before (the whole datagram: `overlap_conflict`;
identical retransmitted overlaps are fine), and RFC 1858 tiny fragments (`tiny`). When every
slot is collecting, the oldest datagram is evicted for the new one (`evicted`).

The ECN field is merged as RFC 3168 5.3 says: CE on any fragment marks the datagram CE, and
fragments that mix Not-ECT with ECT or CE drop the datagram (`ecn_mixed`).
"""
from ustack.core.compat import const
from ustack.core.buf import PacketBuffer
from ustack.core.checksum import csum
from ustack.core.stats import Counters
from ustack.core.wire import icmp4
from ustack.core.wire.fields import copy

REASS_COUNTERS = ("fragments", "reassembled", "timeouts", "no_slot", "too_big", "malformed",
                  "oversize", "overlap_conflict", "tiny", "evicted", "ecn_mixed")

IP_MAX = const(65535)     # RFC 791: Total Length is 16 bits
PROTO_TCP = const(6)
PROTO_UDP = const(17)
PROTO_ICMP = const(1)
# RFC 3168 5: the ECN field's codepoints seen, one bit each (Not-ECT, ECT(1), ECT(0), CE)
ECN_SEEN_NOT_ECT = const(1)
ECN_SEEN_CE = const(8)


# ---- shared by both families' reassembly (core/reass6.py too) -----------------------------
def mark(bm, first, last):
    """The 8-byte blocks first..last-1 of a datagram arrived (bitmap bm, a bit each)."""
    k = first
    while k < last:
        bm[k >> 3] |= 1 << (k & 7)
        k += 1


def complete(bm, total):
    """Every 8-byte block of a datagram total bytes long has arrived."""
    k = 0
    last = (total + 7) >> 3
    while k < last:
        if not (bm[k >> 3] & (1 << (k & 7))):
            return False
        k += 1
    return True


def ecn_mixed(seen):
    """RFC 3168 5.3: Not-ECT beside ECT/CE fragments (seen: 1 << codepoint of each) MUST
    drop the datagram."""
    return (seen & ECN_SEEN_NOT_ECT) != 0 and seen != ECN_SEEN_NOT_ECT


class Slot(PacketBuffer):
    def __init__(self, size, index):
        PacketBuffer.__init__(self, size + 20, index)
        self.src = bytearray(4)
        self.dst = bytearray(4)
        self.ident = 0
        self.proto = 0
        self.total = -1
        self.maxend = 0       # furthest byte any fragment reached
        self.have_first = False
        self.ecn_seen = 0     # 1 << codepoint for every fragment's ECN field
        self.iface = None     # where fragment zero came in (for the Time Exceeded)
        self.expires = 0
        self.busy = False     # collecting fragments
        self.bitmap = bytearray((size + 63) // 64)


class Reassembly:
    def __init__(self, stack, config):
        self.stack = stack
        self.max = config["REASS_SIZE"]
        self.timeout = config["REASS_TIMEOUT_MS"]
        self.slots = [Slot(self.max, -1 - i) for i in range(config["REASS_SLOTS"])]
        self.stats = Counters(REASS_COUNTERS)

    def _find(self, b, off):
        ident = (b[off + 4] << 8) | b[off + 5]
        proto = b[off + 9]
        for s in self.slots:
            if s.busy and s.ident == ident and s.proto == proto:
                a = s.src
                d = s.dst
                if a[0] == b[off + 12] and a[1] == b[off + 13] and a[2] == b[off + 14] and \
                        a[3] == b[off + 15] and d[0] == b[off + 16] and d[1] == b[off + 17] and \
                        d[2] == b[off + 18] and d[3] == b[off + 19]:
                    return s
        free = None
        oldest = None
        for s in self.slots:
            if not s.in_use:
                if not s.busy:
                    free = s
                    break
                if oldest is None or s.expires < oldest.expires:
                    oldest = s
        if free is None and oldest is not None:
            # every slot is collecting: the oldest datagram makes room (it is the least
            # likely to complete, and a flood of first fragments cannot hold all slots)
            self.stats.evicted += 1
            oldest.busy = False
            oldest.iface = None
            free = oldest
        s = free
        if s is not None:
            s.busy = True
            s.ident = ident
            s.proto = proto
            copy(s.src, 0, b, off + 12, 4)
            copy(s.dst, 0, b, off + 16, 4)
            s.total = -1
            s.maxend = 0
            s.have_first = False
            s.ecn_seen = 0
            s.expires = self.stack.now + self.timeout
            bm = s.bitmap
            for i in range(len(bm)):
                bm[i] = 0
            self.stack.timer_at(s.expires)
            return s
        return None

    def input(self, iface, pb, off, ihl, tot):
        """Take a fragment (owning pb). Returns the completed slot or None."""
        st = self.stats
        stack = self.stack
        b = pb.buf
        st.fragments += 1
        frag = (b[off + 6] << 8) | b[off + 7]
        fo = (frag & 0x1FFF) << 3
        mf = frag & 0x2000
        plen = tot - ihl
        end = fo + plen
        if plen <= 0 or (mf and (plen & 7)):
            st.malformed += 1
            stack.free(pb)
            return None
        if ihl + end > IP_MAX:
            st.oversize += 1  # ping of death: no legal datagram reaches this far
            stack.free(pb)
            return None
        proto = b[off + 9]
        if (proto == PROTO_TCP and fo == 8) or (fo == 0 and mf and plen < (
                20 if proto == PROTO_TCP else 8 if proto == PROTO_UDP or proto == PROTO_ICMP
                else 0)):
            # RFC 1858 3.1/3.2: a first fragment too short for the transport header, or a
            # TCP fragment at offset 8 (it could only rewrite the flags), exists to get past
            # filters
            st.tiny += 1
            stack.free(pb)
            return None
        if end > self.max:
            st.too_big += 1
            stack.free(pb)
            return None
        s = self._find(b, off)
        if s is None:
            st.no_slot += 1
            stack.free(pb)
            return None
        sb = s.buf
        bm = s.bitmap
        # lengths must agree (RFC 791): one end, nothing beyond it (teardrop)
        if not mf:
            if (s.total >= 0 and s.total != end) or s.maxend > end:
                st.malformed += 1
                stack.free(pb)
                self._drop(s)
                return None
        elif s.total >= 0 and end > s.total:
            st.malformed += 1
            stack.free(pb)
            self._drop(s)
            return None
        # an overlap must repeat what came before, byte for byte, or the datagram goes
        k = fo >> 3
        last = (end + 7) >> 3
        while k < last:
            if bm[k >> 3] & (1 << (k & 7)):
                j = k << 3
                e = j + 8
                if e > end:
                    e = end
                d = off + ihl - fo
                while j < e:
                    if sb[20 + j] != b[d + j]:
                        st.overlap_conflict += 1
                        stack.free(pb)
                        self._drop(s)
                        return None
                    j += 1
            k += 1
        # copies by index or memmove (wire.fields.copy): a slice load would allocate per
        # fragment on MicroPython
        if fo == 0:
            copy(sb, 0, b, off, 20)
            sb[0] = 0x45
            s.have_first = True
            s.iface = iface
        copy(sb, 20 + fo, b, off + ihl, plen)
        s.ecn_seen |= 1 << (b[off + 1] & 3)
        stack.free(pb)
        if not mf:
            s.total = end
        if end > s.maxend:
            s.maxend = end
        mark(bm, fo >> 3, (end + 7) >> 3)
        if s.total < 0 or not s.have_first or not complete(bm, s.total):
            return None
        # complete: rewrite the header as an unfragmented datagram
        seen = s.ecn_seen
        if ecn_mixed(seen):
            st.ecn_mixed += 1  # RFC 3168 5.3: Not-ECT beside ECT/CE MUST be dropped
            self._drop(s)
            return None
        if seen & ECN_SEEN_CE:
            sb[1] |= 3  # RFC 3168 5.3: a CE mark on any fragment survives reassembly
        t = s.total + 20
        sb[2] = t >> 8
        sb[3] = t & 0xFF
        sb[6] = 0
        sb[7] = 0
        sb[10] = 0
        sb[11] = 0
        c = ~csum(sb, 0, 20, 0) & 0xFFFF
        sb[10] = c >> 8
        sb[11] = c & 0xFF
        s.busy = False
        s.in_use = True
        s.off = 0
        s.n = t
        st.reassembled += 1
        return s

    def _drop(self, s):
        s.busy = False
        s.iface = None

    def tick(self, now):
        nxt = 0
        for s in self.slots:
            if s.busy:
                if now >= s.expires:
                    self.stats.timeouts += 1
                    s.busy = False
                    if s.have_first:
                        # the slot holds fragment zero's header and first 8+ bytes: the quote
                        self.stack.icmp.error(s.iface, s, 0, icmp4.TIME_EXCEEDED,
                                              icmp4.FRAG_REASS_EXCEEDED, 0)
                    s.iface = None
                elif nxt == 0 or s.expires < nxt:
                    nxt = s.expires
        return nxt
