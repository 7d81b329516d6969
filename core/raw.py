"""Raw IPv4 sockets (SOCK_RAW): receive copies of whole datagrams of one protocol (header
included, as BSD does) and send payloads the stack wraps in an IP header, or full headers with
IP_HDRINCL."""
from ustack.core.compat import EINVAL, EMSGSIZE, ENOBUFS, oserror
from ustack.core.wire import ipv4 as ip4
from ustack.core.wire import fields
from ustack.core import socket as so


class RawSocket(so.Socket):
    def __init__(self, stack, family, type, proto):
        so.Socket.__init__(self, stack, family, type, proto)
        if not 0 <= proto <= 255:
            raise oserror(EINVAL)
        self.hdrincl = proto == 255
        self.qhead = None
        self.qtail = None
        self.qlen = 0
        self.qmax = stack.config["UDP_RX_QUEUE"]
        stack.raw_sockets.append(self)

    def bind(self, addr):
        self.local_ip, _ = so.parse_addr((addr[0], 0))

    def connect(self, addr):
        self.remote_ip, _ = so.parse_addr((addr[0], 0))
        self.remote_port = 1

    def _setopt(self, level, opt, value):
        if level == so.IPPROTO_IP and opt == so.IP_HDRINCL:
            self.hdrincl = bool(value)
            return True
        return False

    def _deliver(self, pb, off, tot):
        stack = self.stack
        # a copy needs a packet buffer: a reassembled datagram may be bigger than one
        if self.qlen >= self.qmax or tot > stack.pool.size:
            stack.ipv4.stats.rx_raw_dropped += 1
            return False
        c = stack.alloc()
        if c is None:
            stack.ipv4.stats.rx_raw_dropped += 1
            return False
        fields.copy(c.buf, 0, pb.buf, off, tot)
        c.off = 0
        c.n = tot
        c.tag = 0
        c.next = None
        if self.qtail is None:
            self.qhead = c
        else:
            self.qtail.next = c
        self.qtail = c
        self.qlen += 1
        self._event()
        return True

    def readable(self):
        return self.qlen > 0

    def recvfrom(self, bufsize, flags=0):
        self._check_open()
        while self.qlen == 0:
            self._block(self.readable, flags)
        pb = self.qhead
        n = pb.n if pb.n < bufsize else bufsize
        data = bytes(pb.buf[0:n])
        addr = (ip4.ntoa(pb.buf, 12), 0)
        self.qhead = pb.next
        if self.qhead is None:
            self.qtail = None
        self.qlen -= 1
        self.stack.free(pb)
        return data, addr

    def recv(self, bufsize, flags=0):
        return self.recvfrom(bufsize, flags)[0]

    def sendto(self, data, addr):
        self._check_open()
        dst, _ = so.parse_addr((addr[0], 0))
        return self._send(data, dst)

    def send(self, data):
        return self._send(data, self.remote_ip)

    def _send(self, data, dst):
        stack = self.stack
        n = len(data)
        pb = stack.ipv4.alloc_tx()
        if pb is None:
            raise oserror(ENOBUFS)
        if self.hdrincl:
            if n < 20 or n + 14 > pb.size:
                stack.free(pb)
                raise oserror(EMSGSIZE if n >= 20 else EINVAL)
            pb.off = 14
            fields.copy(pb.buf, 14, data, 0, n)
            pb.n = n
            r = stack.routes.lookup(pb.buf, 14 + 16)
            if r < 0:
                stack.free(pb)
                raise oserror(101)
            stack.routes.iface[r].output(pb, stack.routes.nexthop)
            return n
        if pb.off + n > pb.size:
            stack.free(pb)
            raise oserror(EMSGSIZE)
        fields.copy(pb.buf, pb.off, data, 0, n)
        pb.n = n
        err = stack.ipv4.output(pb, self.proto, self.local_ip, dst, ttl=self.ttl)
        if err:
            raise oserror(err)
        return n

    def close(self):
        while self.qlen:
            pb = self.qhead
            self.qhead = pb.next
            self.qlen -= 1
            self.stack.free(pb)
        self.qtail = None
        so.Socket.close(self)
