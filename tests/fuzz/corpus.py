"""Writes the fuzzer's seed corpus (tests/fuzz/corpus/): small valid inputs of every kind the
stack handles, in fuzz_input.py's record format, each file named for what it holds.

    .venv/bin/python -m tests.fuzz.corpus          (rewrites tests/fuzz/corpus)
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests import frames as F  # noqa: E402
from tests import rig as R  # noqa: E402
from tests.fuzz.fuzz_input import (record, OP_FRAME, OP_TIME, OP_READ, OP_SEND,  # noqa: E402
                                   OP_CLOSE, OP_BURST, OP_ROUTE, FIX_CSUM)

BCAST = b"\xff" * 6
OTHER_IP = bytes([192, 0, 2, 77])
S, A, P, RST, FIN = 0x02, 0x10, 0x08, 0x04, 0x01
SEQ = R.PEER_ISS + 1          # the peer's next sequence number on the established connection
ACK = R.STACK_ISS + 1         # what it acknowledges


def frame(f, fix=False):
    return record(OP_FRAME | (FIX_CSUM if fix else 0), f)


def ip_frame(proto, payload, src=F.HOST_IP, dst=F.STACK_IP, dmac=F.STACK_MAC, **kw):
    return F.eth(dmac, F.HOST_MAC, R.ETH_IP, F.ipv4(src, dst, proto, payload, **kw))


def fragments(proto, payload, size, ident):
    """The datagram split into size-byte fragments (size a multiple of 8)."""
    out = []
    for pos in range(0, len(payload), size):
        mf = 0x2000 if pos + size < len(payload) else 0
        out.append(ip_frame(proto, payload[pos:pos + size], ident=ident, frag=mf | (pos >> 3)))
    return out


def est(flags, data=b"", seq=SEQ, ack=ACK, ts=True, window=65535):
    return R.tcp_to(R.TCP_PORT, flags, seq, ack, data,
                    options=R.ts_opt(R.PEER_TS + 2, 1000) if ts else b"", window=window)


def quote(proto, sport, dport):
    """An ICMP error's quoted datagram: one of ours (stack -> host)."""
    l4 = struct.pack("!HHI", sport, dport, 0)
    return F.ipv4(F.STACK_IP, F.HOST_IP, proto, l4)


def icmp(t, code, body):
    h = struct.pack("!BBHI", t, code, 0, 0) + body
    c = ~R.csum(h) & 0xFFFF
    return h[:2] + struct.pack("!H", c) + h[4:]


def seeds():
    client_port = R.CLIENT_PORT
    echo = F.icmp_echo(7, 1, bytes(range(48)))
    big_echo = F.icmp_echo(7, 2, bytes(i & 0xFF for i in range(3000)))
    s = {}
    # link layer and ARP
    s["arp_request"] = frame(F.arp_request_frame())
    s["arp_reply"] = frame(F.eth(F.STACK_MAC, F.HOST_MAC, R.ETH_ARP,
                                 F.arp(2, F.HOST_MAC, F.HOST_IP, F.STACK_MAC, F.STACK_IP)))
    s["arp_gratuitous"] = frame(F.eth(BCAST, b"\x02\0\0\0\0\x99", R.ETH_ARP,
                                      F.arp(1, b"\x02\0\0\0\0\x99", OTHER_IP, bytes(6), OTHER_IP)))
    s["arp_probe"] = frame(F.eth(BCAST, b"\x02\0\0\0\0\x98", R.ETH_ARP,
                                 F.arp(1, b"\x02\0\0\0\0\x98", bytes(4), bytes(6), F.STACK_IP)))
    s["unknown_ethertype"] = frame(F.eth(F.STACK_MAC, F.HOST_MAC, 0x88B5, bytes(46)))
    s["vlan_ping"] = frame(F.STACK_MAC + F.HOST_MAC + b"\x81\x00\x00\x05\x08\x00" +
                           F.ipv4(F.HOST_IP, F.STACK_IP, 1, echo))
    # IPv4 and ICMP
    s["ping"] = frame(ip_frame(1, echo))
    s["ping_fix"] = frame(ip_frame(1, echo), fix=True)
    s["ping_burst"] = record(OP_BURST | FIX_CSUM, ip_frame(1, echo))
    s["ping_options"] = frame(ip_frame(1, echo, options=b"\x07\x07\x04" + bytes(4) + b"\x00"))
    s["ping_broadcast"] = frame(ip_frame(1, echo, dst=b"\xff" * 4, dmac=BCAST))
    s["ping_subnet_broadcast"] = frame(ip_frame(1, echo, dst=bytes([192, 0, 2, 255]), dmac=BCAST))
    s["ping_multicast"] = frame(ip_frame(1, echo, dst=bytes([224, 0, 0, 1]),
                                         dmac=b"\x01\x00\x5e\x00\x00\x01"))
    s["ping_not_for_us"] = frame(ip_frame(1, echo, dst=OTHER_IP))
    s["echo_reply"] = frame(ip_frame(1, F.icmp_echo(7, 1, b"abc", t=0)))
    s["icmp_port_unreach_udp"] = frame(ip_frame(1, icmp(3, 3, quote(17, 49152, 53))))
    s["icmp_port_unreach_tcp"] = frame(ip_frame(1, icmp(3, 3, quote(6, client_port,
                                                                       R.CLIENT_DPORT))))
    s["icmp_frag_needed"] = frame(ip_frame(1, icmp(3, 4, quote(6, R.TCP_PORT, R.PEER_PORT))))
    s["icmp_time_exceeded"] = frame(ip_frame(1, icmp(11, 0, quote(17, 49152, 53))))
    s["icmp_redirect"] = frame(ip_frame(1, icmp(5, 1, quote(6, R.TCP_PORT, R.PEER_PORT))))
    s["forward"] = record(OP_ROUTE) + frame(ip_frame(1, echo, dst=OTHER_IP)) + \
        frame(ip_frame(17, F.udp(F.HOST_IP, OTHER_IP, 1, 2, bytes(2000)), dst=OTHER_IP))
    s["forward_filtered"] = record(OP_ROUTE, b"\x40") + \
        frame(ip_frame(1, echo, dst=OTHER_IP, ttl=30)) + \
        frame(ip_frame(1, echo, dst=OTHER_IP, ttl=1))
    s["unknown_proto"] = frame(ip_frame(99, b"z" * 12))
    s["raw_proto"] = frame(ip_frame(R.RAW_PROTO, b"r" * 12))
    s["fragments_ping"] = b"".join(frame(f) for f in fragments(1, echo, 24, 0x101))
    s["fragments_ping_reversed"] = b"".join(frame(f) for f in
                                            reversed(fragments(1, echo, 24, 0x102)))
    s["fragments_big_ping"] = b"".join(frame(f) for f in fragments(1, big_echo, 1480, 0x103))
    s["fragments_overlap"] = b"".join(frame(f) for f in fragments(1, echo, 16, 0x104) +
                                      fragments(1, echo, 24, 0x104))
    s["fragment_alone_timeout"] = frame(fragments(1, echo, 24, 0x105)[0]) + \
        record(OP_TIME, struct.pack("!H", 40000))
    # UDP
    s["udp_open"] = frame(F.udp_frame(R.UDP_PORT, b"hello"))
    s["udp_open_read"] = frame(F.udp_frame(R.UDP_PORT, b"hello")) + record(OP_READ)
    s["udp_closed"] = frame(F.udp_frame(9999, b"hello"))
    s["udp_zero_csum"] = frame(ip_frame(17, F.udp(F.HOST_IP, F.STACK_IP, 1, R.UDP_PORT, b"zz",
                                                  zero_csum=True)))
    s["udp_broadcast"] = frame(ip_frame(17, F.udp(F.HOST_IP, b"\xff" * 4, 1, R.UDP_PORT, b"b"),
                                        dst=b"\xff" * 4, dmac=BCAST))
    s["udp_fix"] = frame(F.udp_frame(R.UDP_PORT, b"fixme"), fix=True)
    s["udp_burst"] = record(OP_BURST | FIX_CSUM, F.udp_frame(R.UDP_PORT, b"many"))
    s["udp_fragments"] = b"".join(frame(f) for f in fragments(
        17, F.udp(F.HOST_IP, F.STACK_IP, 5, R.UDP_PORT, bytes(100)), 32, 0x201))
    # TCP: listener and closed ports
    s["tcp_syn"] = frame(R.tcp_to(R.TCP_PORT, S, 7000, 0, options=R.SYN_OPTS, sport=41000))
    s["tcp_syn_plain"] = frame(R.tcp_to(R.TCP_PORT, S, 7000, 0, sport=41001))
    s["tcp_handshake"] = frame(R.tcp_to(R.TCP_PORT, S, 7000, 0, sport=41002)) + \
        frame(R.tcp_to(R.TCP_PORT, A, 7001, R.STACK_ISS + 1, sport=41002)) + \
        frame(R.tcp_to(R.TCP_PORT, A | P, 7001, R.STACK_ISS + 1, b"GET /", sport=41002)) + \
        record(OP_READ)
    s["tcp_syn_flood"] = record(OP_BURST | FIX_CSUM, R.tcp_to(R.TCP_PORT, S, 7000, 0,
                                                              sport=41003))
    s["tcp_syn_closed"] = frame(R.tcp_to(81, S, 7000, 0))
    s["tcp_ack_closed"] = frame(R.tcp_to(81, A, 7000, 5))
    s["tcp_xmas"] = frame(R.tcp_to(R.TCP_PORT, 0x29, 7000, 0, sport=41004))
    s["tcp_synfin"] = frame(R.tcp_to(R.TCP_PORT, S | FIN, 7000, 0, sport=41005))
    s["tcp_option_bomb"] = frame(R.tcp_to(R.TCP_PORT, S, 7000, 0, sport=41006,
                                          options=bytes([1] * 36) + bytes([3, 3, 200, 0])))
    # TCP: the established connection
    s["est_data"] = frame(est(A | P, b"hello world"))
    s["est_data_read"] = frame(est(A | P, b"hello world")) + record(OP_READ)
    s["est_ooo"] = frame(est(A | P, b"world", seq=SEQ + 6)) + frame(est(A | P, b"hello ")) + \
        record(OP_READ)
    s["est_dup"] = frame(est(A | P, b"abc")) + frame(est(A | P, b"abc"))
    s["est_fin"] = frame(est(A | P | FIN, b"bye")) + record(OP_READ) + record(OP_CLOSE)
    s["est_rst"] = frame(est(RST, ts=False))
    s["est_rst_in_window"] = frame(est(RST, seq=SEQ + 100, ts=False))
    s["est_syn"] = frame(est(S))
    s["est_send"] = record(OP_SEND, b"x" * 100) + frame(est(A, ack=ACK + 100))
    s["est_send_lost"] = record(OP_SEND, b"x" * 3000) + record(OP_TIME, struct.pack("!H", 3000))
    s["est_zero_window"] = frame(est(A, window=0)) + record(OP_SEND, b"y" * 50) + \
        record(OP_TIME, struct.pack("!H", 2000))
    s["est_close"] = record(OP_CLOSE) + frame(est(A, ack=ACK + 1)) + \
        frame(est(A | FIN, ack=ACK + 1))
    s["est_no_ts"] = frame(est(A | P, b"plain", ts=False))
    s["est_sack"] = record(OP_SEND, b"s" * 2000) + frame(R.tcp_to(
        R.TCP_PORT, A, SEQ, ACK, options=b"\x01\x01\x05\x0a" + struct.pack(
            "!II", ACK + 1000, ACK + 1500)))
    # the client connection (SYN-SENT)
    s["client_synack"] = frame(R.tcp_to(client_port, S | A, 9000, R.STACK_ISS + 1,
                                        options=R.SYN_OPTS, sport=R.CLIENT_DPORT))
    s["client_rst"] = frame(R.tcp_to(client_port, RST | A, 0, R.STACK_ISS + 1,
                                     sport=R.CLIENT_DPORT))
    s["client_syn"] = frame(R.tcp_to(client_port, S, 9000, 0, sport=R.CLIENT_DPORT))
    s["time"] = record(OP_TIME, b"\xff\xff")
    return s


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.remove(os.path.join(out, name))
    s = seeds()
    for name, data in sorted(s.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("corpus: %d seeds in %s" % (len(s), out))


if __name__ == "__main__":
    main()
