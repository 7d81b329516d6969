"""What tshark finds wrong in a test's pcap: one filter for every Linux interop test.

`bad_frames(stack)` flags malformed frames, bad IP and TCP checksums and expert errors. A TCP
checksum of 0xffff on a frame that is not the stack's is excused: where the sum comes to
zero, Linux's software checksum (skb_checksum_help) writes 0xffff, the same number in ones'
complement (RFC 1624 3), and tshark calls it bad - about one frame in 65536. The stack's own
frames are held to it: a checksum computed from scratch is never 0xffff.
`tcp.checksum.status == 0` is tshark's "Bad" (1 good, 2 unverified)."""
import subprocess


def bad_frames(stack, stack6=None):
    mine = "ip.src == %s" % stack + (" || ipv6.src == %s" % stack6 if stack6 else "")
    excused = "(tcp.checksum.ffff && !(%s))" % mine
    return ("(_ws.malformed || ip.checksum.status == 0 || "
            "(tcp.checksum.status == 0 && !%s) || "
            "(_ws.expert.severity == error && !%s))" % (excused, excused))


def tshark(pcap, flt, *extra):
    """The lines of tshark's summary of the frames matching flt, checksums verified and TCP
    reassembly for the layers above off (HTTP's view of a lossy capture reports a resend
    cut at other boundaries as a reassembly error: not a finding about the wire)."""
    r = subprocess.run(["tshark", "-n", "-r", str(pcap), "-o", "tcp.desegment_tcp_streams:FALSE",
                        "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                        "-o", "udp.check_checksum:TRUE", "-Y", flt] + list(extra),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stdout.splitlines() if ln.strip()]
