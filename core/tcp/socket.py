"""Stream sockets (SOCK_STREAM) with Python's socket semantics over the TCP core.

A socket is unbound, bound, listening (accept queue of established TCBs) or attached to
one TCB. close() hands the TCB over to the stack (an orphan that finishes the FIN exchange
and TIME-WAIT on its own), or aborts with a RST for SO_LINGER 0 or unread data (RFC 2525
2.17). Errors are OSError with BSD errnos; blocking calls wait through Stack.wait."""
from ustack.core.compat import (
    EAGAIN, EALREADY, EINPROGRESS, EINVAL, EISCONN, ENOTCONN, EPIPE, ENETUNREACH, ENOBUFS,
    EADDRINUSE, EADDRNOTAVAIL, EMFILE, oserror, Timeout)
from ustack.core import socket as so
from ustack.core.net.ip import is_any, is_multicast, link_mtu
from ustack.core.tcp import tcb as T
from ustack.core.tcp import output as out
from ustack.core.tcp import cc as ccmod
from ustack.core.tcp.seq import seq_diff


# Linux's bounds for the keepalive options (include/net/tcp.h MAX_TCP_KEEPIDLE,
# MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT), beyond them EINVAL as there: the times in ms then fit
# 32-bit fields (socket.pxd, tcb.pxd)
MAX_KEEP_S = 32767
MAX_KEEPCNT = 127


def _trim_rcv(tcp, tcb):
    """The receive buffer back to the pool once read empty (and no out-of-order bytes wait
    beyond it): an idle connection holds no buffer."""
    ooo = tcb.ooo
    if ooo is None or ooo.n == 0:
        tcb.rcv = tcp.rings.shed(tcb.rcv)  # and the shared empty ring for the TCB


def _bufsize(v, dflt):
    if not v:
        return dflt
    if v < 1024:
        return 1024
    if v > 1 << 24:
        return 1 << 24
    return v


class StreamSocket(so.Socket):
    """A stream socket's state and calls; TcpSocket (below) is what the stack makes.
    Compiled, a C struct (socket.pxd)."""
    __slots__ = ("tcb", "listening", "backlog", "acc_q", "syn_count", "tflags",
                 "connecting", "soft_error")
    # Options few sockets set are class defaults; a socket that sets one keeps it in its
    # lazily made __dict__ (TcpSocket): 24 bytes less in every idle connection's socket
    # (issue 13). The keepalive times in ms (at most MAX_KEEP_S s), 0: the board's
    keep_idle = 0
    keep_intvl = 0
    keep_cnt = 0
    linger = -1       # SO_LINGER's seconds, -1: off
    cc_name = None    # TCP_CONGESTION's choice; None: the board's TCP_CC

    def __init__(self, stack, family, type, proto):
        so.check_proto(type, proto, so.IPPROTO_TCP)
        so.Socket.__init__(self, stack, family, type, proto)
        tcp = stack.tcp
        self.tcb = None
        self.listening = False
        self.backlog = 0
        self.acc_q = ()          # a listener's accept queue (a list from listen() on)
        self.syn_count = 0
        self.tflags = 0
        self.connecting = False
        self.soft_error = 0      # the last ICMP soft error (proto.icmp_error), for SO_ERROR
        self.rcvbuf = tcp.rcv_buf
        self.sndbuf = tcp.snd_buf

    @property
    def tcp(self):
        """The stack's TCP: read through the stack, not kept (a pointer less in every
        socket, issue 13)."""
        return self.stack.tcp

    # ---- names ---------------------------------------------------------------------------
    def bind(self, addr):
        self._check_open()
        if self.local_port:
            raise oserror(EINVAL)
        ip, port = so.parse_addr(addr, "bind", self.family)
        self.check_mapped(ip, EINVAL)
        self.tcp.bind(self, ip, port)

    def listen(self, backlog=None):
        self._check_open()
        if self.tcb is not None:
            raise oserror(EINVAL)
        tcp = self.tcp
        if not self.local_port:
            tcp.bind(self, so.any_addr(self.family), 0)
        for o in tcp.listeners:
            if o is not self and o.local_port == self.local_port and \
                    so.binds_overlap(o, self, self.local_ip):
                raise oserror(EADDRINUSE)
        if backlog is None:
            backlog = tcp.backlog
        if backlog < 1:
            backlog = 1
        if backlog > tcp.backlog:
            backlog = tcp.backlog
        self.backlog = backlog
        self.rcvbuf = _bufsize(self.rcvbuf, tcp.rcv_buf)
        self.sndbuf = _bufsize(self.sndbuf, tcp.snd_buf)
        if not self.listening:
            self.listening = True
            self.acc_q = []      # only a listener pays for a list (issue 13)
            tcp.listeners.append(self)

    def accept(self):
        s = self.accept_conn()
        return s, s._name(s.remote_ip, s.remote_port)

    def accept_conn(self):
        """accept() without the peer's socket address: the next connection as a socket,
        with accept()'s errors and waiting. For a service that never looks at the address
        (issue 13: formatting it was 4-6 us of an accept, tcp_services.EventService)."""
        self._check_open()
        if not self.listening:
            raise oserror(EINVAL)
        while not self.acc_q:
            self._block(self.readable)
        if len(self.stack.sockets) >= self.stack.config["SOCKETS"]:
            raise oserror(EMFILE)
        tcb = self.acc_q.pop(0)
        s = TcpSocket(self.stack, self.family, self.type, self.proto)
        s.tcb = tcb
        tcb.sock = s
        tcb.listener = None
        s.local_ip = tcb.local_ip
        s.local_port = tcb.local_port
        s.remote_ip = tcb.remote_ip
        s.remote_port = tcb.remote_port
        s.reuse_opts = self.reuse_opts
        s.tflags = self.tflags
        s.rcvbuf = self.rcvbuf
        s.sndbuf = self.sndbuf
        if self.cc_name is not None:
            s.cc_name = self.cc_name  # inherited from the listener, as on Linux
        if self.keep_idle or self.keep_intvl or self.keep_cnt:
            s.keep_idle = self.keep_idle  # the keepalive options too (what getsockopt says)
            s.keep_intvl = self.keep_intvl
            s.keep_cnt = self.keep_cnt
        s.v6only = self.v6only
        s.ttl = self.ttl
        s.tos = self.tos
        self.stack.sockets.append(s)
        self.tcp.bound.append(s)
        if tcb.state == T.CLOSED and tcb.error:
            s.so_error = tcb.error
        return s

    # ---- connecting ----------------------------------------------------------------------
    def connect(self, addr):
        e = self._connect(addr)
        if e:
            raise oserror(e)

    def connect_ex(self, addr):
        try:
            return self._connect(addr)
        except Timeout:
            return EAGAIN

    def _connect(self, addr):
        self._check_open()
        if self.listening:
            return EISCONN
        tcb = self.tcb
        if tcb is not None and tcb.state == T.CLOSED and not self.connecting:
            # the last attempt failed and said so: start over (Linux: a socket back in
            # CLOSE may connect again; its port stays bound)
            self.tcp.release_buffers(tcb, True)
            self.tcb = None
            self.remote_ip = so.any_addr(self.family)
            self.remote_port = 0
            self.so_error = 0
            tcb = None
        if tcb is not None:
            if not self.connecting:
                return EISCONN
            if tcb.state == T.SYN_SENT or tcb.state == T.SYN_RECEIVED:
                if self.timeout == 0:
                    return EALREADY
                self._block(self._connected)
            return self._connect_done()
        ip, port = so.parse_addr(addr, "connect", self.family)
        if self.family == so.AF_INET6 and len(ip) == 4 and \
                (self.v6only or not is_any(self.local_ip) and len(self.local_ip) == 16):
            return ENETUNREACH    # Linux: no v4-mapped peer for a V6ONLY socket
        if is_any(ip):
            ip = so.loopback_addr(self.family if len(ip) == 16 else so.AF_INET)
        stack = self.stack
        tcp = self.tcp
        if is_multicast(ip) or stack.is_broadcast(ip):
            return ENETUNREACH  # RFC 1122 4.2.3.10: MUST reject, either family (Linux's errno)
        if so.is_link_local6(ip):
            try:
                iface = so.scope_iface(stack, addr, ip, True)   # RFC 4007 6: by its zone
            except OSError as e:
                return e.args[0]
        else:
            iface = stack.ip.route_out(ip, 0, len(ip))  # 127/8 and our own addresses: "lo"
        if iface is None:
            return ENETUNREACH
        li = self.local_ip
        if not is_any(li) and stack.ip.local_iface(li, 0, len(li)) is None:
            return ENETUNREACH  # the bound address left (a DHCP lease ended): Linux's errno
        src = self.local_ip if not is_any(self.local_ip) else \
            bytes(stack.source_for_iface(iface, ip))
        if not self.local_port:
            try:
                self.local_port = tcp.ephemeral(src, ip, port)
            except OSError:
                return EADDRNOTAVAIL  # every ephemeral port taken (Linux's errno)
            if self not in tcp.bound:
                tcp.bound.append(self)
        if tcp.find(src, self.local_port, ip, port) is not None:
            return EADDRNOTAVAIL
        tcb = tcp.new_tcb(src, self.local_port, ip, port)
        if tcb is None:
            tcp.stats.conn_no_tcb += 1  # TCP_MAX_CONNS connections, none recyclable
            return ENOBUFS
        self.rcvbuf = _bufsize(self.rcvbuf, tcp.rcv_buf)
        self.sndbuf = _bufsize(self.sndbuf, tcp.snd_buf)
        self._setup(tcb)
        # IPv6: the link MTU a Router Advertisement may have lowered (RFC 4861 6.3.4)
        tcb.iface_mtu = link_mtu(iface, len(ip))
        tcb.state = T.SYN_SENT
        tcb.rcv_wscale = tcp.wscale_for(tcb.rcv_cap) if tcp.wscale else 0
        tcp.set_mss(tcb)
        if not tcp.open_buffers(tcb):
            tcp.drop(tcb, 0)
            return ENOBUFS
        self.tcb = tcb
        self.local_ip = tcb.local_ip
        self.remote_ip = tcb.remote_ip
        self.remote_port = port
        self.connecting = True
        tcp.stats.conn_active += 1
        out.output(tcp, tcb)
        if self.timeout == 0:
            return EINPROGRESS
        self._block(self._connected)
        return self._connect_done()

    def getpeername(self):
        # no peer until the handshake completes (Linux: ENOTCONN in SYN-SENT)
        tcb = self.tcb
        if self.connecting and tcb is not None and (tcb.state == T.CLOSED or not self._connected()):
            raise oserror(ENOTCONN)
        return so.Socket.getpeername(self)

    def _ip_opts_changed(self):
        tcb = self.tcb
        if tcb is not None and tcb.sock is self:
            tcb.ttl = self.ttl
            tcb.tos = self.tos

    def _setup(self, tcb):
        tcb.sock = self
        tcb.rcv_cap = self.rcvbuf
        tcb.snd_cap = self.sndbuf
        tcb.flags |= self.tflags & (T.F_NODELAY | T.F_KEEPALIVE)
        tcb.ttl = self.ttl
        tcb.tos = self.tos
        if self.keep_idle:
            tcb.keep_idle = self.keep_idle
        if self.keep_intvl:
            tcb.keep_intvl = self.keep_intvl
        if self.keep_cnt:
            tcb.keep_cnt = self.keep_cnt

    def _connected(self):
        st = self.tcb.state
        return st != T.SYN_SENT and st != T.SYN_RECEIVED

    def _connect_done(self):
        self.connecting = False
        tcb = self.tcb
        if tcb.state == T.CLOSED:
            e = self.so_error or tcb.error or ENOTCONN
            self.so_error = 0
            return e
        return 0

    # ---- sending -------------------------------------------------------------------------
    def _writable_now(self):
        tcb = self.tcb
        st = tcb.state
        if st == T.SYN_SENT or st == T.SYN_RECEIVED:
            return False
        if self.so_error or tcb.snd is None or tcb.flags & T.F_FIN_QUEUED:
            return True
        if st != T.ESTABLISHED and st != T.CLOSE_WAIT:
            return True
        # as Linux (sk_stream_is_writeable): writable once the free space is at least half of
        # what is queued (a third of the buffer when it was full), so a writer woken by
        # poll or blocked in send gets a worthwhile chunk, not one acknowledged segment
        snd = tcb.snd
        tcp = self.stack.tcp
        free = tcp.rings.limit(snd) - snd.count  # cap, or storage TCP_MEM won't grow
        return free > 0 and free >= (snd.count >> 1)

    def writable(self):
        if self.tcb is None:
            return not self.listening
        return self._writable_now()

    def send(self, data, flags=0):
        self._check_open()
        so.check_data(data)
        tcb = self.tcb
        if tcb is None:
            raise oserror(ENOTCONN)
        n = len(data)
        while True:
            self._take_error()
            st = tcb.state
            if st == T.SYN_SENT or st == T.SYN_RECEIVED:
                self._block(self._writable_now, flags)
                continue
            if tcb.flags & T.F_FIN_QUEUED or (st != T.ESTABLISHED and st != T.CLOSE_WAIT) or \
                    tcb.snd is None:
                raise oserror(EPIPE)
            snd = tcb.snd
            if snd.count < snd.cap:
                tcp = self.stack.tcp
                # storage as the data needs it (ring.py: grown within TCP_MEM)
                if n > 0:
                    snd = tcp.rings.reserve(snd, snd.count + n)  # its own, grown
                    tcb.snd = snd
                    if snd.held() == 0:
                        raise oserror(ENOBUFS)  # no memory for the send buffer
                k = snd.write(data, 0, n)
                if k > 0 or n == 0:
                    out.output(tcp, tcb)
                    return k
            self._block(self._writable_now, flags)

    def sendto(self, data, flags_or_addr, addr=None):
        """As Linux: a connected stream ignores the address; an unconnected one is EPIPE."""
        self._check_open()
        if addr is None:
            addr = flags_or_addr
            flags_or_addr = 0
        so.check_data(data)
        so.parse_addr(addr, "sendto", self.family)
        if self.tcb is None:
            raise oserror(EPIPE)
        return self.send(data, flags_or_addr)

    def sendall(self, data, flags=0):
        mv = memoryview(data)
        n = len(mv)
        i = 0
        while i < n:
            i += self.send(mv[i:], flags)

    # ---- receiving -----------------------------------------------------------------------
    def readable(self):
        if self.listening:
            return len(self.acc_q) > 0
        tcb = self.tcb
        if tcb is None:
            return False
        if tcb.rcv is not None and tcb.rcv.count > 0:
            return True
        return self.so_error != 0 or tcb.state == T.CLOSED or \
            (tcb.flags & (T.F_RCVD_FIN | T.F_SHUT_RD)) != 0

    def _wait_data(self, flags):
        """True when data is ready, False at end of stream; raises pending errors."""
        tcb = self.tcb
        if tcb is None:
            raise oserror(ENOTCONN)
        while True:
            r = tcb.rcv
            if r is not None and r.count > 0 and not (tcb.flags & T.F_SHUT_RD):
                return True
            self._take_error()
            st = tcb.state
            if tcb.flags & (T.F_RCVD_FIN | T.F_SHUT_RD) or st == T.CLOSED:
                return False
            self._block(self.readable, flags)

    def recv_into(self, buf, nbytes=0, flags=0):
        self._check_open()
        n = so.check_nbytes(buf, nbytes, "recv_into")
        if not self._wait_data(flags):
            return 0
        tcb = self.tcb
        r = tcb.rcv
        if n > r.count:
            n = r.count
        if flags & so.MSG_PEEK:
            r.peek_into(buf, 0, 0, n)
        else:
            r.read_into(buf, 0, n)
            self._consumed(n)
        return n

    def recv(self, bufsize, flags=0):
        self._check_open()
        so.check_bufsize(bufsize, "recv")
        if not self._wait_data(flags):
            return b""
        r = self.tcb.rcv
        n = bufsize if bufsize < r.count else r.count
        b = bytearray(n)
        if flags & so.MSG_PEEK:
            r.peek_into(b, 0, 0, n)
        else:
            r.read_into(b, 0, n)
            self._consumed(n)
        return bytes(b)

    def recvfrom(self, bufsize, flags=0):
        """A stream has no datagram source: (data, None), as CPython gives."""
        self._check_open()
        so.check_bufsize(bufsize, "recvfrom")
        return self.recv(bufsize, flags), None

    def recvfrom_into(self, buf, nbytes=0, flags=0):
        self._check_open()
        so.check_nbytes(buf, nbytes, "recvfrom_into")
        return self.recv_into(buf, nbytes, flags), None

    def _consumed(self, n=-1):
        """The application freed receive space (n bytes; -1: not said): send a window update
        when the window grew by at least min(buffer/2, MSS) (RFC 9293 3.8.6.2.2), and only
        when this read made it so: a gap that was there before (the SYN's unscaled window
        below a large buffer) waits for the next ACK. (Waiting until the window doubled,
        as Linux's tcp_cleanup_rbuf does, halved a bulk receiver's ACKs but left the
        simulator's lossy paths window-starved: more probes and resends, issue 12.)"""
        tcb = self.tcb
        tcp = self.stack.tcp
        _trim_rcv(tcp, tcb)
        r = tcb.rcv   # after the trim: maybe the shared empty ring now (ring.py)
        st = tcb.state
        if st != T.ESTABLISHED and st != T.FIN_WAIT_1 and st != T.FIN_WAIT_2:
            return
        free = r.cap - r.count
        cur = seq_diff(tcb.rcv_adv, tcb.rcv_nxt)
        if cur < 0:
            cur = 0
        step = r.cap >> 1
        if tcb.mss < step:
            step = tcb.mss
        if free - cur >= step:
            was = free - n
            if n >= 0 and was - cur >= step:
                return  # the window was worth an update before this read
            tcb.flags |= T.F_ACKNOW
            if tcp.bursting:
                # a read inside a poll (a service draining its socket): the update waits for
                # the burst's end, as its ACKs do, and carries what all its reads opened
                if not (tcb.flags & T.F_ACK_BURST):
                    tcb.flags |= T.F_ACK_BURST
                    tcp.ack_q.append(tcb)
                return
            out.output(tcp, tcb)

    # ---- shutdown and close --------------------------------------------------------------
    def shutdown(self, how):
        self._check_open()
        if how not in (so.SHUT_RD, so.SHUT_WR, so.SHUT_RDWR):
            raise oserror(EINVAL)
        tcb = self.tcb
        if tcb is None or tcb.state == T.CLOSED or tcb.state == T.SYN_SENT:
            raise oserror(ENOTCONN)
        if how != so.SHUT_WR:
            tcb.flags |= T.F_SHUT_RD
            if tcb.rcv is not None:
                tcb.rcv.discard(tcb.rcv.count)
                _trim_rcv(self.tcp, tcb)
        if how != so.SHUT_RD:
            self._queue_fin(tcb)
        self._event()

    def _queue_fin(self, tcb):
        """RFC 9293 3.10.4 CLOSE: the FIN follows the queued data."""
        if tcb.flags & T.F_FIN_QUEUED:
            return
        tcb.flags |= T.F_FIN_QUEUED
        if tcb.state == T.ESTABLISHED:
            tcb.state = T.FIN_WAIT_1
        elif tcb.state == T.CLOSE_WAIT:
            tcb.state = T.LAST_ACK
        out.output(self.tcp, tcb)

    def close(self):
        if self.closed:
            return
        tcp = self.tcp
        if self.listening:
            self.listening = False
            for t in self.acc_q:
                t.listener = None
                tcp.abort(t)
            self.acc_q = ()
            for t in list(tcp.conns):
                if t.listener is self:
                    tcp.abort(t)
        tcb = self.tcb
        if tcb is not None:
            st = tcb.state
            if st == T.CLOSED:
                tcp.release_buffers(tcb, True)
            elif st == T.SYN_SENT:
                tcb.sock = None
                tcp.drop(tcb, 0)
            elif self.linger == 0 or (tcb.rcv is not None and tcb.rcv.count > 0 and
                                      st != T.TIME_WAIT):
                tcb.sock = None
                tcp.abort(tcb)
            else:
                self._queue_fin(tcb)
                if self.linger > 0 and self.timeout != 0:
                    self.stack.wait(lambda: tcb.state == T.CLOSED or
                                    tcb.flags & T.F_FIN_ACKED != 0, self.linger)
                tcb.sock = None
                st = tcb.state
                if st == T.CLOSED:
                    tcp.release_buffers(tcb, True)
                else:
                    tcp.release_rcv(tcb)
                    if st == T.FIN_WAIT_2:
                        t = tcp.fin_deadline(self.stack.now)
                        tcb.t_conn = t
                        tcp.watch(tcb)
                        tcp.arm(t)
                    tcp.orphaned(tcb)
            self.tcb = None
        tcp.unbind(self)
        so.Socket.close(self)

    # ---- options -------------------------------------------------------------------------
    def _setopt(self, level, opt, value):
        v = value if isinstance(value, int) else int.from_bytes(bytes(value[:4]), "little")
        tcb = self.tcb
        if level == so.IPPROTO_TCP:
            if opt == so.TCP_NODELAY:
                self._flag(T.F_NODELAY, v)
                if v and tcb is not None and tcb.state >= T.ESTABLISHED and tcb.snd is not None:
                    out.output(self.tcp, tcb)
            elif opt == so.TCP_KEEPIDLE or opt == so.TCP_KEEPINTVL or opt == so.TCP_KEEPCNT:
                if v < 1 or v > (MAX_KEEPCNT if opt == so.TCP_KEEPCNT else MAX_KEEP_S):
                    raise oserror(EINVAL)
                if opt == so.TCP_KEEPCNT:
                    self.keep_cnt = v
                elif opt == so.TCP_KEEPIDLE:
                    self.keep_idle = v * 1000
                else:
                    self.keep_intvl = v * 1000
                if tcb is not None:
                    self._setup_keep(tcb)
            elif opt == so.TCP_MAXSEG:
                pass  # accepted; the MSS follows the MTU and the peer's option
            elif opt == so.TCP_CONGESTION:
                self._set_cc(value)
            else:
                return False
            return True
        if level == so.SOL_SOCKET:
            if opt == so.SO_KEEPALIVE:
                self._flag(T.F_KEEPALIVE, v)
                if tcb is not None:
                    self._setup_keep(tcb)
                return True
            if opt == so.SO_LINGER:
                if isinstance(value, int):
                    raise oserror(EINVAL)
                b = bytes(value)
                on = int.from_bytes(b[0:4], "little")
                secs = int.from_bytes(b[4:8], "little") if len(b) >= 8 else 0
                self.linger = secs if on else -1
                return True
        return False

    def _set_cc(self, value):
        """TCP_CONGESTION: a controller's name as bytes (NUL-terminated or not); an unknown
        one is ENOENT, as on Linux. A connection switches at once, keeping cwnd/ssthresh."""
        if isinstance(value, int):
            raise oserror(so.ENOENT)
        b = bytes(value[:ccmod.NAME_MAX])
        i = b.find(b"\0")
        if i >= 0:
            b = b[:i]
        try:
            name = b.decode()
        except UnicodeError:
            raise oserror(so.ENOENT)
        if not ccmod.available(name):
            raise oserror(so.ENOENT)  # Linux too, for a module it cannot load
        self.cc_name = name
        tcb = self.tcb
        if tcb is not None and tcb.cc is not None and tcb.cc.name != name:
            ccmod.switch(self.tcp, tcb, name)

    def _flag(self, f, on):
        if on:
            self.tflags |= f
        else:
            self.tflags &= ~f
        if self.tcb is not None:
            if on:
                self.tcb.flags |= f
            else:
                self.tcb.flags &= ~f

    def _setup_keep(self, tcb):
        if self.keep_idle:
            tcb.keep_idle = self.keep_idle
        if self.keep_intvl:
            tcb.keep_intvl = self.keep_intvl
        if self.keep_cnt:
            tcb.keep_cnt = self.keep_cnt
        if tcb.flags & T.F_KEEPALIVE and tcb.state >= T.ESTABLISHED:
            t = tcb.last_rx + tcb.keep_idle
            if t < self.stack.now:
                t = self.stack.now
            tcb.t_keep = t
            self.tcp.watch(tcb)
            self.tcp.arm(t)
        elif not (tcb.flags & T.F_KEEPALIVE):
            tcb.t_keep = 0

    def getsockopt(self, level, opt, buflen=0):
        # SO_ERROR: a pending error, else the last soft one (an ICMP error the connection
        # survived, RFC 1122 4.2.3.9), read once - as Linux's sk_err_soft
        if level == so.SOL_SOCKET and opt == so.SO_ERROR and not self.so_error and \
                self.soft_error and not self.closed:
            e = self.soft_error
            self.soft_error = 0
            return e
        return so.Socket.getsockopt(self, level, opt, buflen)

    def _getopt(self, level, opt):
        tcb = self.tcb
        if level == so.IPPROTO_TCP:
            if opt == so.TCP_NODELAY:
                return 1 if self.tflags & T.F_NODELAY else 0
            if opt == so.TCP_MAXSEG:
                return tcb.mss if tcb is not None else 536
            if opt == so.TCP_KEEPIDLE:
                return (self.keep_idle or self.tcp.keep_idle) // 1000
            if opt == so.TCP_KEEPINTVL:
                return (self.keep_intvl or self.tcp.keep_intvl) // 1000
            if opt == so.TCP_KEEPCNT:
                return self.keep_cnt or self.tcp.keep_cnt
            if opt == so.TCP_CONGESTION:
                # the name NUL-padded to Linux's TCP_CA_NAME_MAX bytes
                n = tcb.cc.name if tcb is not None and tcb.cc is not None else \
                    (self.cc_name or self.tcp.cc_name)
                b = n.encode()
                return b + bytes(ccmod.NAME_MAX - len(b))
            return None
        if level == so.SOL_SOCKET:
            if opt == so.SO_KEEPALIVE:
                return 1 if self.tflags & T.F_KEEPALIVE else 0
            if opt == so.SO_LINGER:
                on = 1 if self.linger >= 0 else 0
                secs = self.linger if self.linger > 0 else 0
                return on.to_bytes(4, "little") + secs.to_bytes(4, "little")
        return None

    def state(self):
        """The connection's RFC 9293 state name ('LISTEN' for a listener)."""
        if self.listening:
            return "LISTEN"
        if self.tcb is None:
            return "CLOSED"
        return self.tcb.state_name()


class TcpSocket(StreamSocket):
    # "__dict__": what ports and tests attach, made only when something is (a compiled
    # class's own __dict__ is made with every instance: 64 bytes an idle connection)
    __slots__ = ("__dict__",)
