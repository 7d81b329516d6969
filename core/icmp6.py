"""ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) for the IPv6 layer (core/ipv6.py).

Echo Requests are answered in place (RFC 4443 4.2). A Neighbor Solicitation for one of
our addresses is answered with a solicited, override Advertisement carrying our MAC (RFC
4861 7.2.4) and teaches the cache the sender's address (7.2.3); Advertisements go to the
neighbour cache (7.2.5); both go to DAD first, where a probe or an answer for a tentative
address makes it a duplicate (RFC 4862 5.4.3, 5.4.4). Errors are sent by kind (core/net/
errors.py), only when RFC 4443 2.4 (e) allows (wire/icmp6.may_send_error) and within a
token bucket (2.4 (f)): ERR_BURST errors at once, one more every ERR_INTERVAL_MS.
MLD Queries go to the interface's core/mld.py, Router Advertisements to its core/slaac.py
(addresses, on-link prefixes, the default router, RFC 4191 routes) unless the stack
forwards; Redirects received are counted and ignored. A forwarding stack sends errors about
datagrams in transit (forward_error) and Redirects (send_redirect, RFC 4861 8.2) within the
error token bucket.
"""
from ustack.core.compat import const
from ustack.core.checksum import csum
from ustack.core.stats import Counters
from ustack.core.wire import icmp6 as wi
from ustack.core.wire import ipv6 as w
from ustack.core import addr6
from ustack.core.net import errors as ek
from ustack.core.icmp import Pinger
from ustack.core.wire.fields import copy
from ustack.core.nd import REACHABLE

ICMP6_COUNTERS = wi.ND_DROPS + (
    "rx_packets", "rx_too_short", "rx_bad_csum", "rx_echo_request", "rx_echo_reply",
    "rx_ns", "rx_na", "rx_ra", "rx_ns_not_ours", "rx_ns_tentative", "rx_dad_duplicate",
    "rx_errors", "rx_error_short", "rx_error_unknown", "rx_ignored", "tx_echo_reply",
    "rx_packet_too_big", "rx_error_not_ours",
    "tx_ns", "tx_na", "tx_rs", "tx_echo_request", "tx_errors",
    "tx_error_not_allowed", "tx_error_rate_limited", "tx_no_buffer", "tx_no_source",
    "tx_redirects", "rx_ra_forwarding",
)

ERR_BURST = const(10)          # RFC 4443 2.4 (f): errors sent back to back at most
ERR_INTERVAL_MS = const(100)   # then one per interval (10 per second)

# the kinds of core/net/errors.py as ICMPv6 type, code (RFC 4443 3.1-3.4)
_KINDS = {
    ek.ERR_NET_UNREACH: (wi.DEST_UNREACH, wi.NO_ROUTE),
    ek.ERR_HOST_UNREACH: (wi.DEST_UNREACH, wi.ADDR_UNREACH),
    ek.ERR_PROTO_UNREACH: (wi.PARAM_PROBLEM, wi.UNRECOGNIZED_NH),
    ek.ERR_PORT_UNREACH: (wi.DEST_UNREACH, wi.PORT_UNREACH),
    ek.ERR_PKT_TOO_BIG: (wi.PACKET_TOO_BIG, 0),
    ek.ERR_ADMIN_PROHIBITED: (wi.DEST_UNREACH, wi.ADMIN_PROHIBITED),
    ek.ERR_TIME_EXCEEDED: (wi.TIME_EXCEEDED, wi.HOP_LIMIT_EXCEEDED),
    ek.ERR_REASS_TIMEOUT: (wi.TIME_EXCEEDED, wi.REASS_TIME_EXCEEDED),
    ek.ERR_PARAM_PROBLEM: (wi.PARAM_PROBLEM, wi.ERRONEOUS_FIELD),
}


class Pinger6(Pinger):
    """Echo Requests (RFC 4443 4.1) to one IPv6 destination: core/icmp.py's Pinger with
    16-byte addresses; ICMPv6.input matches the replies by identifier and source."""

    def __init__(self, icmp6, dst, ident, size=56, slots=64):
        Pinger.__init__(self, icmp6, "0.0.0.0", ident, size, slots)
        self.dst = addr6.pton(dst) if isinstance(dst, str) else bytes(dst)

    def send(self, seq, now):
        icmp6 = self.icmp
        v6 = icmp6.v6
        pb = v6.alloc_tx()
        if pb is None:
            icmp6.stats.tx_no_buffer += 1
            return False
        if pb.off + 8 + self.size > pb.size:
            icmp6.stats.tx_no_buffer += 1   # no fragments here: at most a buffer's room
            icmp6.stack.free(pb)
            return False
        self.fill(pb, wi.ECHO_REQUEST, seq, now)
        icmp6.stats.tx_echo_request += 1
        return v6.output(pb, w.NH_ICMPV6, None, self.dst, wi.CSUM) == 0


class ICMPv6:
    def __init__(self, stack):
        self.stack = stack
        self.v6 = stack.ipv6
        self.stats = Counters(ICMP6_COUNTERS)
        self.peer = bytearray(16)    # the address a reply or an error goes to
        self.local = bytearray(16)   # the address an error comes from
        self.grp = bytearray(16)     # a solicited-node group
        self.tokens = ERR_BURST
        self.refill = 0              # when the bucket last gained a token
        self.pingers = []
        self._ident = 0

    def pinger(self, dst, size=56, ident=None):
        """A Pinger6 to dst (text or 16 bytes): send(seq, now), received, rtts; close()."""
        if ident is None:
            self._ident = (self._ident + 0x1D3B) & 0xFFFF
            ident = self._ident
        p = Pinger6(self, dst, ident, size)
        self.pingers.append(p)
        return p

    # ---- input ----------------------------------------------------------------------------
    def input(self, pb, m):
        st = self.stats
        stack = self.stack
        b = pb.buf
        o = m.l4
        n = m.l4len
        st.rx_packets += 1
        if n < wi.HDR_LEN:
            st.rx_too_short += 1
            stack.free(pb)
            return
        # RFC 4443 2.3: the checksum covers the pseudo-header (RFC 8200 8.1)
        if csum(b, o, n, m.psum + n) != 0xFFFF:
            st.rx_bad_csum += 1
            stack.free(pb)
            return
        if stack.raw_sockets:
            stack.raw_input(pb, m)    # RFC 3542 3: a copy for raw ICMPv6 sockets
        t = b[o]
        if t == wi.ECHO_REQUEST:
            st.rx_echo_request += 1
            self._echo(pb, m)
            return
        if t == wi.NEIGHBOR_SOLICIT or t == wi.NEIGHBOR_ADVERT:
            why = wi.nd_check(b, m.hdr, o, n)
            if why is not None:
                setattr(st, why, getattr(st, why) + 1)
            elif t == wi.NEIGHBOR_SOLICIT:
                st.rx_ns += 1
                self._ns(b, m)
            else:
                st.rx_na += 1
                self._na(b, m)
        elif t == wi.ROUTER_ADVERT and stack.ipv4.forward:
            # a router is no host: RFC 4861 6.3.4 (addresses, default routers, routes,
            # parameters from RAs) is the host's part; 6.2.7 only lets routers compare notes
            st.rx_ra_forwarding += 1
        elif t == wi.ROUTER_ADVERT and m.iface.slaac is not None:
            why = wi.nd_check(b, m.hdr, o, n)
            if why is not None:
                setattr(st, why, getattr(st, why) + 1)
            else:
                st.rx_ra += 1
                p = wi.find_option(b, o + wi.RA_LEN, o + n, wi.OPT_SLLA)
                if p >= 0:
                    m.iface.nd.learn(b, m.src, b, p + 2, stack.now, 1)   # RFC 4861 6.3.4
                m.iface.slaac.on_ra(b, m.hdr, o, n, stack.now)
                stack.timer_at(stack.now + 1)
        elif t == wi.ECHO_REPLY:
            st.rx_echo_reply += 1
            if self.pingers and n >= 8:
                ident = (b[o + 4] << 8) | b[o + 5]
                for p in self.pingers:
                    if p.ident == ident and addr6.eq16(p.dst, 0, b, m.src):
                        p.on_reply((b[o + 6] << 8) | b[o + 7], stack.now)
        elif t == wi.MLD_QUERY and m.iface.mld is not None:
            m.iface.mld.on_query(b, m.hdr, o, n, stack.now)   # RFC 3810 6
            stack.timer_at(stack.now + 1)
        elif t < 128:
            st.rx_errors += 1
            self._error_in(b, m)
        else:
            st.rx_ignored += 1   # RS, RA, MLD reports, Redirect: not in this slice
        stack.free(pb)

    def _error_in(self, b, m):
        """RFC 4443 2.4 (a)/(d): an error quoting one of our datagrams goes to its transport
        (the quote's extension headers are not walked: UDP and TCP right behind the header
        only); the transport finds the socket by the quoted addresses and ports."""
        o = m.l4
        n = m.l4len
        q = o + wi.ERR_HDR_LEN
        if n < wi.ERR_HDR_LEN + w.HDR_LEN + 8 or (b[q] >> 4) != 6:
            self.stats.rx_error_short += 1
            return
        if self.v6.find(b, q + w.SRC) < 0:
            # RFC 5927 4.1: an error must quote a packet we sent (our source address)
            self.stats.rx_error_not_ours += 1
            return
        t = b[o]
        c = b[o + 1]
        if t == wi.DEST_UNREACH:
            kind = ek.ERR_PORT_UNREACH if c == wi.PORT_UNREACH else (
                ek.ERR_NET_UNREACH if c == wi.NO_ROUTE else (
                    ek.ERR_ADMIN_PROHIBITED if c == wi.ADMIN_PROHIBITED else ek.ERR_HOST_UNREACH))
        elif t == wi.PACKET_TOO_BIG:
            kind = ek.ERR_PKT_TOO_BIG
            self.stats.rx_packet_too_big += 1
        elif t == wi.TIME_EXCEEDED:
            kind = ek.ERR_TIME_EXCEEDED if c == 0 else ek.ERR_REASS_TIMEOUT
        elif t == wi.PARAM_PROBLEM:
            kind = ek.ERR_PROTO_UNREACH if c == wi.UNRECOGNIZED_NH else ek.ERR_PARAM_PROBLEM
        else:
            self.stats.rx_error_unknown += 1   # RFC 4443 2.4 (b): passed up if known only
            return
        stack = self.stack
        qm = stack.ip.quote
        qm.family = m.family
        qm.hdr = q
        qm.src = q + w.SRC
        qm.dst = q + w.DST
        qm.alen = 16
        qm.l4 = q + w.HDR_LEN
        qm.l4len = n - wi.ERR_HDR_LEN - w.HDR_LEN
        qm.proto = b[q + w.NEXT_HDR]
        qm.iface = m.iface
        arg = wi.get32(b, o + wi.PARAM)
        if kind == ek.ERR_PKT_TOO_BIG:
            if arg > 0xFFFF:
                arg = 0xFFFF   # the Payload Length is 16 bits (no jumbograms, RFC 2675)
            if qm.proto != w.NH_TCP or stack.tcp is None:
                # RFC 8201 4: the path to the quoted destination is smaller (never below
                # 1280, RFC 8021: no atomic fragments); TCP learns it only once the quoted
                # segment proves to be in flight (RFC 5927, core/tcp/proto.py)
                stack.ip.learn_pmtu(b, qm.dst, 16, arg)
        if qm.proto == w.NH_UDP:
            stack.udp.icmp_error(kind, arg, b, qm)
        elif qm.proto == w.NH_TCP and stack.tcp is not None:
            stack.tcp.icmp_error(kind, arg, b, qm)

    def _echo(self, pb, m):
        """RFC 4443 4.2: the reply, built where the request lies."""
        b = pb.buf
        h = m.hdr
        o = m.l4
        n = m.l4len
        v6 = self.v6
        src = None
        if m.bcast:
            # RFC 4443 2.2: to a multicast address: from one of ours on that link
            k = v6.source_for(b, m.src, m.iface)
            if k < 0:
                self.stats.tx_no_source += 1
                self.stack.free(pb)
                return
            src = v6.addrs[k]
        if o != h + w.HDR_LEN:
            # extension headers are not echoed: the message moves behind the header
            p = 0
            while p < n:
                b[h + w.HDR_LEN + p] = b[o + p]
                p += 1
            o = h + w.HDR_LEN
            b[h + 4] = n >> 8
            b[h + 5] = n & 0xFF
            b[h + w.NEXT_HDR] = w.NH_ICMPV6
        wi.echo_reply_in_place(b, h, o, src, 0, v6.hop_limit)
        if o != m.l4:
            wi.fill_checksum(b, h, o, n)
        pb.off = h
        pb.n = w.HDR_LEN + n
        self.stats.tx_echo_reply += 1
        v6.reply(m.iface, pb)

    def _ns(self, b, m):
        """RFC 4861 7.2.3 / RFC 4862 5.4.3: a solicitation for one of our addresses."""
        v6 = self.v6
        iface = m.iface
        t = m.l4 + wi.ND_TARGET
        unspec = addr6.is_unspecified(b, m.src)
        if v6.dad.on_ns(b, t, unspec):
            # a tentative target is never answered; from :: it is another node's probe
            self.stats.rx_ns_tentative += 1
            if unspec:
                self.stats.rx_dad_duplicate += 1
            return
        k = v6.find(b, t)
        if k < 0 or v6.ifaces[k] is not iface or \
                v6.flags[k] & (addr6.ADDR_TENTATIVE | addr6.ADDR_DUPLICATE):
            self.stats.rx_ns_not_ours += 1
            return
        if unspec:
            # 7.2.4: an answer to a DAD probe goes to all nodes, not solicited
            addr6.copy16(self.peer, 0, addr6.ALL_NODES, 0)
            flags = wi.NA_FLAG_OVERRIDE
        else:
            p = wi.find_option(b, m.l4 + wi.NS_LEN, m.l4 + m.l4len, wi.OPT_SLLA)
            if p >= 0 and iface.nd is not None:
                iface.nd.learn(b, m.src, b, p + 2, self.stack.now)
            addr6.copy16(self.peer, 0, b, m.src)
            flags = wi.NA_FLAG_SOLICITED | wi.NA_FLAG_OVERRIDE
        if self.stack.ipv4.forward:
            flags |= wi.NA_FLAG_ROUTER   # RFC 4861 7.2.4: a router says so
        self.send_na(iface, v6.addrs[k], self.peer, flags)

    def _na(self, b, m):
        v6 = self.v6
        t = m.l4 + wi.ND_TARGET
        if v6.dad.on_na(b, t):
            self.stats.rx_dad_duplicate += 1   # RFC 4862 5.4.4
            return
        nd = m.iface.nd
        if nd is None:
            return
        p = wi.find_option(b, m.l4 + wi.NA_LEN, m.l4 + m.l4len, wi.OPT_TLLA)
        nd.advert(b, t, b if p >= 0 else None, p + 2, b[m.l4 + wi.NA_FLAGS], self.stack.now)

    # ---- ND output ------------------------------------------------------------------------
    def send_ns(self, iface, target, ll, resolve):
        """A solicitation for target: to its solicited-node group, or (ll given: a probe of
        a known neighbour, RFC 4861 7.3.3) to target itself; resolve False: a DAD probe
        from the unspecified address without our MAC (RFC 4862 5.4.2)."""
        v6 = self.v6
        pb = v6.alloc_tx()
        if pb is None:
            self.stats.tx_no_buffer += 1
            return
        src = None
        if resolve:
            k = v6.source_for(target, 0, iface)
            if k < 0:
                self.stats.tx_no_source += 1
                self.stack.free(pb)
                return
            src = v6.addrs[k]
        pb.n = wi.write_ns(pb.buf, pb.off, target, iface.mac if resolve else None)
        if ll is not None:
            dst = target
        else:
            addr6.solicited_node(target, 0, self.grp, 0)
            dst = self.grp
        self.stats.tx_ns += 1
        v6.output(pb, w.NH_ICMPV6, src, dst, wi.CSUM, wi.ND_HOP_LIMIT, 0, iface, src is None)

    def send_rs(self, iface):
        """RFC 4861 6.3.7 / 4.1: a Router Solicitation to ff02::2; from a usable link-local
        address with our MAC as source link-layer option, else from :: without it."""
        v6 = self.v6
        pb = v6.alloc_tx()
        if pb is None:
            self.stats.tx_no_buffer += 1
            return
        k = v6.source_for(addr6.ALL_ROUTERS, 0, iface)
        if k >= 0 and v6.ifaces[k] is not iface:
            k = -1                  # 6.3.7: one of this interface's addresses, or ::
        pb.n = wi.write_rs(pb.buf, pb.off, iface.mac if k >= 0 else None)
        self.stats.tx_rs += 1
        v6.output(pb, w.NH_ICMPV6, v6.addrs[k] if k >= 0 else None, addr6.ALL_ROUTERS, wi.CSUM,
                  wi.ND_HOP_LIMIT, 0, iface, k < 0)

    def send_na(self, iface, target, dst, flags):
        v6 = self.v6
        pb = v6.alloc_tx()
        if pb is None:
            self.stats.tx_no_buffer += 1
            return
        pb.n = wi.write_na(pb.buf, pb.off, flags, target, iface.mac)
        self.stats.tx_na += 1
        v6.output(pb, w.NH_ICMPV6, target, dst, wi.CSUM, wi.ND_HOP_LIMIT, 0, iface)

    # ---- errors ---------------------------------------------------------------------------
    def _allow(self):
        """RFC 4443 2.4 (f): a token bucket of ERR_BURST, one token per ERR_INTERVAL_MS."""
        now = self.stack.now
        if self.tokens < ERR_BURST:
            k = (now - self.refill) // ERR_INTERVAL_MS
            if k > 0:
                self.tokens = self.tokens + k if self.tokens + k < ERR_BURST else ERR_BURST
                self.refill = now
        else:
            self.refill = now
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True

    def error(self, pb, m, kind, arg):
        """The datagram m describes could not be delivered (kind: core/net/errors.py; arg
        the MTU or a Parameter Problem's pointer). pb is not consumed."""
        tc = _KINDS.get(kind)
        if tc is None:
            return
        b = pb.buf
        self._send_error(m.iface, b, m.hdr, m.l4 + m.l4len - m.hdr, tc[0], tc[1], arg,
                         m.proto, m.l4)

    def reass_timeout(self, iface, b, h, n):
        """RFC 8200 4.5: Time Exceeded code 1 about a datagram whose first fragment's
        headers are at b[h] (n bytes quotable) but which never completed."""
        self._send_error(iface, b, h, n, wi.TIME_EXCEEDED, wi.REASS_TIME_EXCEEDED, 0, -1, -1)

    def param_problem(self, iface, pb, h, n, code, ptr):
        """A Parameter Problem about the packet at pb.buf[h:] (the header walk's verdict,
        RFC 8200 4): pb is not consumed."""
        end = w.HDR_LEN + ((pb.buf[h + 4] << 8) | pb.buf[h + 5])
        self._send_error(iface, pb.buf, h, end if end < n else n, wi.PARAM_PROBLEM, code, ptr,
                         -1, -1)

    def forward_error(self, iface, pb, h, n, typ, code, param):
        """An error (RFC 4443 3.1-3.3) about the datagram at pb.buf[h:h+n] we were to
        forward (iface: where it arrived, None once it left its frame). Its upper layer is
        found by the header walk, so no error answers an error (2.4 (e.1)). pb is not
        consumed."""
        b = pb.buf
        res = self.v6.res
        upper = -1
        uoff = -1
        if w.walk(b, h, n, False, res) is None:
            f = res[w.R_FRAG]
            if (f < 0 or ((b[f + w.FRAG_OFF] << 8) | b[f + w.FRAG_OFF + 1]) & 0xFFF8 == 0) \
                    and res[w.R_OFF] < h + n:
                upper = res[w.R_PROTO]
                uoff = res[w.R_OFF]
        self._send_error(iface, b, h, n, typ, code, param, upper, uoff)

    def send_redirect(self, iface, pb, h, n, target):
        """RFC 4861 8.2/4.5: tell the source of the datagram at pb.buf[h:h+n] (a neighbour
        on iface) that target is the better first hop to its destination: from our
        link-local address, hop limit 255, with the target's link-layer address when the
        neighbour cache has it and as much of the datagram as keeps the Redirect within
        1280 bytes. Rate-limited with the errors (RFC 4861 8.2: a router MUST limit them).
        pb is not consumed."""
        st = self.stats
        v6 = self.v6
        b = pb.buf
        k = 0
        while k < v6.count:
            if v6.ifaces[k] is iface and addr6.is_link_local(v6.addrs[k], 0) and \
                    not v6.flags[k] & (addr6.ADDR_TENTATIVE | addr6.ADDR_DUPLICATE):
                break
            k += 1
        if k == v6.count:
            st.tx_no_source += 1
            return
        if not self._allow():
            st.tx_error_rate_limited += 1
            return
        out = v6.alloc_tx()
        if out is None:
            st.tx_no_buffer += 1
            return
        ob = out.buf
        o = out.off
        ob[o] = wi.REDIRECT
        ob[o + 1] = 0
        ob[o + 2] = 0
        ob[o + 3] = 0
        wi.put32(ob, o + 4, 0)
        addr6.copy16(ob, o + wi.ND_TARGET, target, 0)
        addr6.copy16(ob, o + wi.REDIRECT_DEST, b, h + w.DST)
        p = o + wi.REDIRECT_LEN
        nd = iface.nd
        i = nd.find(target, 0) if nd is not None else -1
        if i >= 0 and nd.state[i] >= REACHABLE:   # REACHABLE or later: its address is known
            p += wi.write_lla_option(ob, p, wi.OPT_TLLA, nd.ll[i])
        # the Redirected Header option (4.6.3): 8 bytes, then the datagram cut to a multiple
        # of 8 that keeps the Redirect within the minimum MTU
        q = wi.ERR_MAX_LEN - w.HDR_LEN - (p - o) - 8
        if q > out.size - p - 8:
            q = out.size - p - 8
        if q > n:
            q = n
        q &= ~7
        ob[p] = wi.OPT_REDIRECTED_HDR
        ob[p + 1] = (q >> 3) + 1
        j = 2
        while j < 8:
            ob[p + j] = 0
            j += 1
        copy(ob, p + 8, b, h, q)
        p += 8 + q
        out.n = p - o
        addr6.copy16(self.peer, 0, b, h + w.SRC)
        st.tx_redirects += 1
        v6.output(out, w.NH_ICMPV6, v6.addrs[k], self.peer, wi.CSUM, wi.ND_HOP_LIMIT, 0, iface)

    def _send_error(self, iface, b, h, ilen, typ, code, param, upper, uoff):
        st = self.stats
        l2m = iface is not None and iface.hlen and (b[0] & 1)
        if not wi.may_send_error(typ, code, param if typ == wi.PARAM_PROBLEM else -1, b, h,
                                 upper, uoff, l2m):
            st.tx_error_not_allowed += 1
            return
        if not self._allow():
            st.tx_error_rate_limited += 1
            return
        v6 = self.v6
        pb = v6.alloc_tx()
        if pb is None:
            st.tx_no_buffer += 1
            return
        pb.n = wi.write_error(pb.buf, pb.off, typ, code, param, b, h, ilen,
                              wi.ERR_MAX_LEN - w.HDR_LEN)
        addr6.copy16(self.peer, 0, b, h + w.SRC)
        src = None
        if b[h + w.DST] != 0xFF and v6.local_iface(b, h + w.DST) is not None:
            addr6.copy16(self.local, 0, b, h + w.DST)   # from the address it was sent to
            src = self.local
        st.tx_errors += 1
        # to a link-scope address by the link it came from; any other the way routes say
        # (a router's error goes back by the source's route)
        if not addr6.is_link_local(self.peer, 0):
            iface = None
        v6.output(pb, w.NH_ICMPV6, src, self.peer, wi.CSUM, 0, 0, iface)
