"""Builders for test frames (independent of the stack's own output code)."""
import struct

from tests.unit_ref import csum

HOST_MAC = bytes.fromhex("020000000001")
STACK_MAC = bytes.fromhex("020000000002")
HOST_IP = bytes([192, 0, 2, 1])
STACK_IP = bytes([192, 0, 2, 2])


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=1, frag=0, options=b"", tos=0):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(payload), ident, frag, ttl,
                    proto, 0, src, dst) + options
    c = ~csum(h) & 0xFFFF
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def icmp_echo(ident, seq, data, t=8):
    h = struct.pack("!BBHHH", t, 0, 0, ident, seq) + data
    c = ~csum(h) & 0xFFFF
    return h[:2] + struct.pack("!H", c) + h[4:]


def udp(src_ip, dst_ip, sport, dport, data, zero_csum=False):
    ln = 8 + len(data)
    h = struct.pack("!HHHH", sport, dport, ln, 0) + data
    if zero_csum:
        return h
    ph = src_ip + dst_ip + struct.pack("!BBH", 0, 17, ln)
    c = ~csum(ph + h) & 0xFFFF
    if c == 0:
        c = 0xFFFF
    return h[:6] + struct.pack("!H", c) + h[8:]


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, spa, tha, tpa)


def echo_request_frame(size=56, ident=0x1234, seq=1):
    return eth(STACK_MAC, HOST_MAC, 0x0800,
               ipv4(HOST_IP, STACK_IP, 1, icmp_echo(ident, seq, bytes(i & 0xFF for i in range(size)))))


def udp_frame(dport, data, sport=40000):
    return eth(STACK_MAC, HOST_MAC, 0x0800,
               ipv4(HOST_IP, STACK_IP, 17, udp(HOST_IP, STACK_IP, sport, dport, data)))


def arp_request_frame():
    return eth(b"\xff" * 6, HOST_MAC, 0x0806, arp(1, HOST_MAC, HOST_IP, b"\0" * 6, STACK_IP))


def tcp(src_ip, dst_ip, sport, dport, seq, ack, flags, data=b"", window=65535, options=b""):
    off = (20 + len(options)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0) + options + data
    ph = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(h))
    c = ~csum(ph + h) & 0xFFFF
    return h[:16] + struct.pack("!H", c) + h[18:]


def tcp_frame(dport, flags, seq=1000, ack=0, data=b"", options=b"", sport=40000):
    return eth(STACK_MAC, HOST_MAC, 0x0800,
               ipv4(HOST_IP, STACK_IP, 6, tcp(HOST_IP, STACK_IP, sport, dport, seq, ack, flags, data,
                                              options=options)))


def tsval(f):
    """TSval of an IPv4 TCP frame (20-byte IP header) from its timestamp option (RFC 7323
    3), or None without one."""
    o = 54
    end = 34 + ((f[46] >> 4) << 2)
    while o < end and f[o]:
        if f[o] == 1:  # NOP
            o += 1
            continue
        if f[o] == 8:
            return struct.unpack_from("!I", f, o + 2)[0]
        o += f[o + 1]
    return None
