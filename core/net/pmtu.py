"""Path MTU cache for both families (RFC 1191 IPv4, RFC 8201 IPv6): what ICMP Fragmentation
Needed / ICMPv6 Packet Too Big taught us about a destination, in PMTU_ENTRIES fixed entries.

lookup(b, o, alen, link_mtu) is the MTU to use towards the address at b[o]: the learnt one
while it is younger than PMTU_AGE_MS, else the link's. learn() only ever lowers a path MTU
(RFC 1191 6.3 / RFC 8201 4: a report of a larger MTU than we use is ignored,
`ignored_larger`), clamped to the family's floor: 1280 for IPv6 (RFC 8200 5; RFC 8021: a
Packet Too Big below it does not make us send atomic fragments, `clamped_v6`), and for IPv4
RFC 1191's lowest plateau worth using, 576 bytes (RFC 1122 3.3.3: every host takes
576-byte datagrams; `clamped_v4`). A Fragmentation Needed without the next-hop MTU (an
RFC 1191 7 old router) takes the plateau below the size of the quoted datagram (RFC 1191
7.1). Entries age back to the link MTU after PMTU_AGE_MS (RFC 1191 6.3: "no less than 10
minutes", `expired`); when every entry is in use the oldest-learnt one makes room
(`evicted`). Nothing is allocated after the constructor.
"""
from ustack.core.compat import const
from ustack.core.stats import Counters

PMTU_COUNTERS = ("learned", "ignored_larger", "clamped_v4", "clamped_v6", "evicted",
                 "expired")

PMTU_MIN_V4 = const(576)     # RFC 1122 3.3.3 / RFC 1191 7.1's lowest useful plateau
PMTU_MIN_V6 = const(1280)    # RFC 8200 5: the IPv6 minimum link MTU

# RFC 1191 7.1, table 7-1: the plateaus, highest first (those under 576 left out: our floor)
PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 576)


def plateau_below(size):
    """RFC 1191 7.1: the largest plateau smaller than size (a datagram that did not pass)."""
    for p in PLATEAUS:
        if p < size:
            return p
    return PMTU_MIN_V4


class PmtuCache:
    def __init__(self, config):
        n = config["PMTU_ENTRIES"]
        self.size = n
        self.age = config["PMTU_AGE_MS"]
        self.addr = [bytearray(16) for _ in range(n)]
        self.alen = [0] * n          # 0: the entry is free
        self.mtu = [0] * n
        self.learnt = [0] * n        # when (stack time, ms): ages it, and picks the oldest
        self.live = 0                # entries in use: none (the usual case) costs no search
        self.stats = Counters(PMTU_COUNTERS)

    def _find(self, b, o, alen):
        i = 0
        while i < self.size:
            if self.alen[i] == alen:
                a = self.addr[i]
                k = 0
                while k < alen and a[k] == b[o + k]:
                    k += 1
                if k == alen:
                    return i
            i += 1
        return -1

    def lookup(self, b, o, alen, link_mtu, now):
        """The MTU towards the address at b[o] (alen bytes): the learnt one if fresh and
        smaller than link_mtu, else link_mtu."""
        if self.live == 0:
            return link_mtu
        i = self._find(b, o, alen)
        if i < 0:
            return link_mtu
        if now - self.learnt[i] >= self.age:
            # RFC 1191 6.3 / RFC 8201 4: try the link's MTU again
            self.alen[i] = 0
            self.live -= 1
            self.stats.expired += 1
            return link_mtu
        m = self.mtu[i]
        return m if m < link_mtu else link_mtu

    def learn(self, b, o, alen, mtu, now, current):
        """A Packet Too Big / Fragmentation Needed said mtu towards b[o] (already mapped from
        RFC 1191's 0). current: the MTU we use there now. Returns the new path MTU if it
        is lower than current, else 0 (nothing changes)."""
        st = self.stats
        if alen == 16:
            if mtu < PMTU_MIN_V6:
                st.clamped_v6 += 1
                mtu = PMTU_MIN_V6
        elif mtu < PMTU_MIN_V4:
            st.clamped_v4 += 1
            mtu = PMTU_MIN_V4
        if mtu >= current:
            st.ignored_larger += 1   # RFC 1191 6.3: never raised by a report
            return 0
        i = self._find(b, o, alen)
        if i < 0:
            i = 0
            old = -1
            k = 0
            while k < self.size:
                if self.alen[k] == 0:
                    old = -1
                    i = k
                    break
                if old < 0 or self.learnt[k] < old:
                    old = self.learnt[k]
                    i = k
                k += 1
            if old >= 0:
                st.evicted += 1
            a = self.addr[i]
            k = 0
            while k < alen:
                a[k] = b[o + k]
                k += 1
            if old < 0:
                self.live += 1
            self.alen[i] = alen
        self.mtu[i] = mtu
        self.learnt[i] = now
        st.learned += 1
        return mtu

    def entries(self, now):
        """[(address bytes, mtu, ms left)] of the fresh entries (for `ustack route`)."""
        out = []
        i = 0
        while i < self.size:
            n = self.alen[i]
            if n and now - self.learnt[i] < self.age:
                out.append((bytes(self.addr[i][0:n]), self.mtu[i],
                            self.age - (now - self.learnt[i])))
            i += 1
        return out
