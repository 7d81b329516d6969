"""CPython's output is the oracle: the same app (ports/micropython/main.py) runs under
CPython and under the MicroPython unix port, gets the same frames on its StreamLink, and
must answer with the same frames, byte for byte: ARP, pings of many sizes (with and without
IP options, fragmented), UDP echo, ICMP errors, and malformed frames that must be dropped."""
from tests import frames as F
from tests.micropython.mpyhelp import needs_micropython, MpApp

pytestmark = [needs_micropython]


def script():
    out = [F.arp_request_frame()]
    for size in (0, 1, 18, 56, 100, 255, 256, 1000, 1472):
        out.append(F.echo_request_frame(size, seq=size))
    for n in (0, 1, 7, 8, 100, 1000, 1472):
        out.append(F.udp_frame(7, bytes((i * 31) & 0xFF for i in range(n)), sport=40000 + n))
    out.append(F.udp_frame(7, b"zero checksum", sport=41000))
    out.append(F.udp_frame(9999, b"closed port"))           # ICMP port unreachable
    out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                     F.ipv4(F.HOST_IP, F.STACK_IP, 1, F.icmp_echo(5, 5, b"opt" * 10),
                            options=b"\x01\x01\x01\x00")))
    out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                     F.ipv4(F.HOST_IP, F.STACK_IP, 99, b"unknown protocol")))
    # a fragmented ping: two fragments of one 2000-byte echo request
    icmp = F.icmp_echo(9, 9, bytes(i & 0xFF for i in range(1992)))
    out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                     F.ipv4(F.HOST_IP, F.STACK_IP, 1, icmp[:1480], ident=77, frag=0x2000)))
    out.append(F.eth(F.STACK_MAC, F.HOST_MAC, 0x0800,
                     F.ipv4(F.HOST_IP, F.STACK_IP, 1, icmp[1480:], ident=77, frag=1480 // 8)))
    good = F.echo_request_frame(64, seq=4242)
    for cut in (1, 13, 14, 20, 33, 34, 41):                 # truncated: dropped silently
        out.append(good[:cut])
    bad = bytearray(good)
    bad[24] ^= 0xFF                                         # bad IP header checksum
    out.append(bytes(bad))
    out.append(good)
    return out


def conversation(workdir, runtime):
    # one seed for both: IP IDs (RFC 7739) and ports are keyed by the stack's secrets
    app = MpApp(workdir, serve="echo", runtime=runtime, extra={"SEED": 0x5EED})
    try:
        replies = []
        first = app.fs.recv(5)                              # the gratuitous ARP
        replies.append(first)
        for i, f in enumerate(script()):
            # each frame is followed by a barrier ping: its reply ends the frame's answers
            mine = []
            app.fs.send(f)
            app.fs.send(F.echo_request_frame(8, ident=0xB00B, seq=i))
            while True:
                r = app.fs.recv(5)
                assert r is not None, "no barrier reply after frame %d" % i
                if app.answer_arp(r):
                    mine.append(b"arp-request " + r)
                    continue
                if len(r) > 41 and r[23] == 1 and r[34] == 0 and r[38:40] == b"\xb0\x0b":
                    break
                mine.append(r)
            # a service's answer (UDP echo) may follow the barrier's in the same loop turn
            while True:
                r = app.fs.recv(0.05)
                if r is None:
                    break
                mine.append(r)
            replies.extend(sorted(mine))
            replies.append(b"--")
        c, out, err = app.stop()
        return replies, c
    finally:
        app.close()


def test_micropython_answers_exactly_like_cpython(tmp_path):
    want, wc = conversation(str(tmp_path / "cpy"), "cpython")
    got, gc = conversation(str(tmp_path / "mpy"), "micropython")
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, "reply %d differs:\nCPython     %s\nMicroPython %s" % (i, w.hex(), g.hex())
    answered = sum(1 for r in want if r != b"--")
    assert answered >= 25
    same = {k: v for k, v in wc.items() if not k.startswith("mem.")}
    mine = {k: v for k, v in gc.items() if not k.startswith("mem.")}
    assert mine == same
    print("%d frames in, %d replies identical; counters identical" % (len(script()), answered))
