"""Multicast Listener Discovery version 2, host side (RFC 3810), with version 1
compatibility (RFC 3810 8, RFC 2710).

A fixed table of joined groups (MLD_GROUPS). Joining sends an unsolicited state-change
report (CHANGE_TO_EXCLUDE with no sources: "every source") and repeats it Robustness
Variable - 1 times at random within the Unsolicited Report Interval (6.1); leaving sends
CHANGE_TO_INCLUDE {} the same way. A General Query is answered after a random delay up to
its Maximum Response Delay by one current-state report of every group (MODE_IS_EXCLUDE
{}), a Group-Specific one by a report of that group (6.2, 6.3). ff02::1 and groups of
interface-local scope are members but never reported (6).

Packets are built whole into mld.buf - IPv6 header from mld.src (the link-local address,
or :: before one is valid, 5.2.13) to ff02::16 (ff02::2 for a v1 Done), hop limit 1, a
Hop-by-Hop Router Alert, the message with its checksum - and handed to
owner.mld_send(mld, buf, n) for the link layer (destination MAC 33:33 + the low 32 bits of
the IPv6 destination).

Source filtering (INCLUDE/EXCLUDE lists per socket) is not kept: every group is EXCLUDE {},
so a Group-and-Source-Specific Query is answered like a Group-Specific one.
"""
from ustack.core.compat import const
from ustack.core.stats import Counters
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6
from ustack.core import addr6

FREE = const(0)
MEMBER = const(1)
LEAVING = const(2)

ROBUSTNESS = const(2)                   # RFC 3810 9.1
QUERY_INTERVAL_MS = const(125000)       # 9.2
QUERY_RESPONSE_INTERVAL_MS = const(10000)  # 9.3
UNSOLICITED_REPORT_INTERVAL_MS = const(1000)  # 9.11
# 9.12: Older Version Querier Present Timeout = Robustness * Query Interval + QRI
OLDER_QUERIER_TIMEOUT_MS = const(260000)
MLD_HOP_LIMIT = const(1)                # 5: link-local, hop limit 1

DEFAULTS = {
    "MLD_GROUPS": 8,   # multicast groups joined at once (solicited-node ones included)
}

MLD_COUNTERS = (
    "tx_reports", "tx_records", "tx_v1_reports", "tx_v1_done", "rx_queries", "rx_v1_queries",
    "rx_query_bad_length", "rx_query_bad_source", "rx_query_bad_hop_limit",
    "rx_query_not_member", "groups_full",
)

REPORT_ROOM = const(1280 - 40 - 8 - 8)   # a report fits the minimum MTU (headers, HBH)
MSG_OFF = const(48)                      # IPv6 header + the 8-byte Hop-by-Hop header


def setting(config, key):
    if config is not None and key in config:
        return config[key]
    return DEFAULTS[key]


def _half_rand():
    return 0x8000


class Mld:
    def __init__(self, owner, config=None, rand=None):
        n = setting(config, "MLD_GROUPS")
        self.owner = owner
        self.size = n
        self.rand = rand if rand is not None else _half_rand
        self.group = [bytearray(16) for _ in range(n)]
        self.state = [FREE] * n
        self.refs = [0] * n
        self.change_at = [-1] * n    # next state-change retransmission
        self.change_left = [0] * n   # state-change reports still to send
        self.query_at = [-1] * n     # pending answer to a group-specific query
        self.general_at = -1         # pending answer to a general query
        self.v1_until = -1           # MLDv1 querier heard: version 1 compatibility mode
        self.robustness = ROBUSTNESS
        self.src = bytearray(16)     # set by the owner: our link-local address, or ::
        self.buf = bytearray(1280)
        self.dst = bytearray(16)
        self.stats = Counters(MLD_COUNTERS)

    def _delay(self, max_ms):
        if max_ms <= 0:
            return 0
        return (max_ms * (self.rand() & 0xFFFF)) >> 16

    def find(self, g, go=0):
        i = 0
        while i < self.size:
            if self.state[i] == MEMBER and addr6.eq16(self.group[i], 0, g, go):
                return i
            i += 1
        return -1

    def is_member(self, g, go=0):
        return self.find(g, go) >= 0

    def _reported(self, i):
        """6: never a report for ff02::1 or for reserved/interface-local scopes."""
        g = self.group[i]
        if (g[1] & 0x0F) <= addr6.SCOPE_INTERFACE:
            return False
        return not addr6.eq16(g, 0, addr6.ALL_NODES, 0)

    def _v1(self, now):
        return self.v1_until >= 0 and now < self.v1_until

    # ---- membership ---------------------------------------------------------------------------
    def join(self, g, now, go=0):
        """Join group g[go:] (counted: join twice, leave twice). The slot, or -1 when the
        table is full (counted)."""
        i = self.find(g, go)
        if i >= 0:
            self.refs[i] += 1
            return i
        i = 0
        while i < self.size and self.state[i] != FREE:
            i += 1
        if i == self.size:
            # a LEAVING slot is reused before giving up
            i = 0
            while i < self.size and self.state[i] != LEAVING:
                i += 1
            if i == self.size:
                self.stats.groups_full += 1
                return -1
        addr6.copy16(self.group[i], 0, g, go)
        self.state[i] = MEMBER
        self.refs[i] = 1
        self.query_at[i] = -1
        self._change(i, now)
        return i

    def join_solicited_node(self, a, now, ao=0):
        """The solicited-node group of our address a (RFC 4861 7.2.1: always joined)."""
        addr6.solicited_node(a, ao, self.dst, 0)
        return self.join(self.dst, now)

    def leave_solicited_node(self, a, now, ao=0):
        """Our address a is gone: one join of its solicited-node group is undone (the last
        sends the leave report, RFC 3810 6.1)."""
        addr6.solicited_node(a, ao, self.dst, 0)
        return self.leave(self.dst, now)

    def leave(self, g, now, go=0):
        i = self.find(g, go)
        if i < 0:
            return False
        self.refs[i] -= 1
        if self.refs[i] > 0:
            return True
        self.query_at[i] = -1
        if not self._reported(i):
            self.state[i] = FREE
            return True
        self.state[i] = LEAVING
        self._change(i, now)
        return True

    def _change(self, i, now):
        """A state-change report now and Robustness - 1 more later (6.1)."""
        self.change_left[i] = 0
        self.change_at[i] = -1
        if not self._reported(i):
            return
        self.change_left[i] = self.robustness
        self._send_change(i, now)

    def _send_change(self, i, now):
        leaving = self.state[i] == LEAVING
        if self._v1(now):
            self._send_v1(i, icmp6.MLD_DONE if leaving else icmp6.MLD_REPORT_V1)
        else:
            n = self._begin()
            n += icmp6.write_mld2_record(self.buf, MSG_OFF + n,
                                         icmp6.CHANGE_TO_INCLUDE if leaving
                                         else icmp6.CHANGE_TO_EXCLUDE, self.group[i], 0)
            self._finish(n, 1)
        self.change_left[i] -= 1
        if self.change_left[i] > 0:
            self.change_at[i] = now + self._delay(UNSOLICITED_REPORT_INTERVAL_MS)
        else:
            self.change_at[i] = -1
            if leaving:
                self.state[i] = FREE

    # ---- queries ----------------------------------------------------------------------------
    def on_query(self, b, ip_off, o, n, now):
        """A Multicast Listener Query of n bytes at b[o] (IPv6 header at ip_off, checksum
        checked by the caller). Returns False when it was dropped (counted)."""
        v = icmp6.mld_query_version(n)
        if v == 0:
            self.stats.rx_query_bad_length += 1   # 8.1: neither 24 nor >= 28 bytes
            return False
        if not addr6.is_link_local(b, ip_off + ip6.SRC):
            self.stats.rx_query_bad_source += 1   # 5.1.14: from a link-local address
            return False
        if b[ip_off + ip6.HOP_LIMIT] != MLD_HOP_LIMIT:
            self.stats.rx_query_bad_hop_limit += 1
            return False
        self.stats.rx_queries += 1
        if v == 1:
            self.stats.rx_v1_queries += 1
            self.v1_until = now + OLDER_QUERIER_TIMEOUT_MS   # 8.2.1
        at = now + self._delay(icmp6.mld_max_resp_ms(b, o, v))
        ga = o + icmp6.MLD_ADDR
        if addr6.is_unspecified(b, ga):
            if v == 1:
                # RFC 2710 4: every group gets its own delayed report
                i = 0
                while i < self.size:
                    if self.state[i] == MEMBER and self._reported(i):
                        self._schedule(i, at)
                    i += 1
            elif self.general_at < 0 or at < self.general_at:
                self.general_at = at                       # 6.2 rules 1 and 2
            return True
        i = self.find(b, ga)
        if i < 0 or not self._reported(i):
            self.stats.rx_query_not_member += 1
            return True
        if v == 2 and 0 <= self.general_at <= at:
            return True                                    # 6.2 rule 1
        self._schedule(i, at)
        return True

    def _schedule(self, i, at):
        if self.query_at[i] < 0 or at < self.query_at[i]:
            self.query_at[i] = at                          # 6.2 rules 3 and 4

    # ---- timers -------------------------------------------------------------------------------
    def tick(self, now):
        nxt = -1
        if self.general_at >= 0:
            if self.general_at <= now:
                self.general_at = -1
                self._send_current(now)
            else:
                nxt = self.general_at
        i = 0
        while i < self.size:
            if self.state[i] != FREE:
                t = self.change_at[i]
                if 0 <= t <= now:
                    self._send_change(i, now)
                t = self.query_at[i]
                if 0 <= t <= now:
                    self.query_at[i] = -1
                    if self.state[i] == MEMBER:
                        if self._v1(now):
                            self._send_v1(i, icmp6.MLD_REPORT_V1)
                        else:
                            n = self._begin()
                            n += icmp6.write_mld2_record(self.buf, MSG_OFF + n,
                                                         icmp6.MODE_IS_EXCLUDE, self.group[i], 0)
                            self._finish(n, 1)
                if self.state[i] != FREE:
                    t = self.change_at[i]
                    if t >= 0 and (nxt < 0 or t < nxt):
                        nxt = t
                    t = self.query_at[i]
                    if t >= 0 and (nxt < 0 or t < nxt):
                        nxt = t
            i += 1
        if self.v1_until >= 0 and now >= self.v1_until:
            self.v1_until = -1
        return nxt

    def _send_current(self, now):
        """One report with a MODE_IS_EXCLUDE {} record per group (several when they do not
        fit in the minimum MTU)."""
        n = self._begin()
        k = 0
        i = 0
        while i < self.size:
            if self.state[i] == MEMBER and self._reported(i):
                if n + icmp6.MLD2_REC_LEN > REPORT_ROOM:
                    self._finish(n, k)
                    n = self._begin()
                    k = 0
                n += icmp6.write_mld2_record(self.buf, MSG_OFF + n, icmp6.MODE_IS_EXCLUDE,
                                             self.group[i], 0)
                k += 1
            i += 1
        if k:
            self._finish(n, k)

    # ---- packets ------------------------------------------------------------------------------
    def _begin(self):
        return icmp6.write_mld2_report_header(self.buf, MSG_OFF, 0)

    def _finish(self, n, nrec):
        b = self.buf
        b[MSG_OFF + icmp6.MLD2_NRECORDS] = (nrec >> 8) & 0xFF
        b[MSG_OFF + icmp6.MLD2_NRECORDS + 1] = nrec & 0xFF
        self._send(addr6.ALL_MLDV2_ROUTERS, n)
        self.stats.tx_reports += 1
        self.stats.tx_records += nrec

    def _send_v1(self, i, typ):
        g = self.group[i]
        n = icmp6.write_mld1(self.buf, MSG_OFF, typ, g, 0)
        if typ == icmp6.MLD_DONE:
            self._send(addr6.ALL_ROUTERS, n)    # RFC 2710 3.7
            self.stats.tx_v1_done += 1
        else:
            self._send(g, n)                    # RFC 2710 3.6: to the group itself
            self.stats.tx_v1_reports += 1

    def _send(self, dst, n):
        b = self.buf
        ip6.write_header(b, 0, 0, 0, 8 + n, ip6.NH_HOPOPTS, MLD_HOP_LIMIT, self.src, dst)
        ip6.write_hbh_router_alert(b, ip6.HDR_LEN, ip6.NH_ICMPV6)
        icmp6.fill_checksum(b, 0, MSG_OFF, n)
        self.owner.mld_send(self, b, ip6.HDR_LEN + 8 + n)
