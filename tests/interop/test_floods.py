"""Stay up under a flood: hping3 floods at full speed and an nmap scan from the Linux kernel in a
throwaway namespace, while an established echo connection, new connections, a ping and an
HTTP transfer (SHA-256 checked) run alongside. The stack must survive, its memory must stay
under its bound and not grow, and every frame the kernel offered must be accounted for: read
by the stack (then counted by exactly one of its counters) or dropped, and counted, at the
TAP's queue. Each flood runs a few seconds; `invoke bench` runs them for 30 s
(benchmarks/floods.py)."""
import re
import shutil

import pytest

from tests.conftest import needs_netns
from tests.floodkit import (FLOODS, pattern_sha, percentile, run_flood, settled,
                            source_on_queue)
from tests.netns import Netns, StackProc, STACK_IP

pytestmark = [needs_netns]

FLOOD_SECS = 4
TRANSFER = 1000000
RSS_BOUND_KB = 64 * 1024   # the `ustack up` process, CPython, pc_tap board
RSS_GROWTH_KB = 4 * 1024   # during a flood, after the first quarter second
PING_LOSS_MAX = 0.10       # "low": at most 1 ping in 10 lost during a flood, fragment
                           # floods too (their own queue: hal/tapsteer.py)
RTT_MAX_S = 1.0            # every 512-byte echo round trip of the established connection
SERVE = "echo,discard,chargen,http"


def _tools():
    for t in ("hping3", "nmap", "tc"):
        if shutil.which(t) is None:
            pytest.fail("%s is not installed (.ci/setup installs it)" % t)


@pytest.fixture
def ns():
    _tools()
    n = Netns("fl")
    yield n
    n.close()


@pytest.fixture
def stack(ns):
    s = StackProc(ns, "--serve", SERVE)
    ns.run(["ping", "-n", "-c", "2", "-i", "0.1", STACK_IP])  # ARP both ways before timing
    yield s
    if s.p.poll() is None:
        s.stop()


def stop_and_account(ns, stack, steered=True):
    """Stop the stack and check that every frame the kernel queued on the TAP was read by the
    stack and counted in eth0.rx_packets, and that every frame read is counted once more by
    the layer it went to (IPv4, ARP) or by its own Ethernet-level drop counter."""
    tap = settled(ns)
    assert stack.p.poll() is None, "the stack died during the flood:\n" + "".join(stack.lines)
    c = stack.stop()
    assert stack.returncode == 0, "".join(stack.lines)[-3000:]
    # the kernel's tx_packets counts the frames the stack's read() took; between reading
    # the TAP's counters and SIGINT the kernel may still send a few (a neighbour probe, the
    # last ACKs and FINs of the connections that ran alongside)
    assert 0 <= c["eth0.rx_packets"] - tap["tx_packets"] <= 10, (c["eth0.rx_packets"], tap)
    l2_drops = sum(v for k, v in c.items() if k.startswith("eth0.rx_") and k not in (
        "eth0.rx_packets", "eth0.rx_bytes", "eth0.rx_vlan", "eth0.rx_budget_hit"))
    arp = c.get("eth0.arp.rx_requests", 0) + c.get("eth0.arp.rx_replies", 0) + \
        c.get("eth0.arp.rx_malformed", 0)
    # IPv4 and IPv6 (the kernel's own ND, MLD and router solicitations on the TAP) each count
    # every frame they are handed
    assert c["eth0.rx_packets"] == c.get("ip.rx_packets", 0) + c.get("ip6.rx_packets", 0) + \
        arp + l2_drops, c
    assert c["pbuf.free"] == c["pbuf.count"], "buffers leaked: %r" % c
    # and `ustack up` reports the frames the kernel dropped at the TAP's queues itself
    assert c["link.tap_queues"] == 8 and c.get("link.tap_dropped", 0) == tap["tx_dropped"], c
    if not steered:
        assert "link.tap_steering" not in c and c.get("link.tap_steer_refused") == -1, c
        return c, tap
    # the TAP's steering program chose each frame's queue (hal/tapsteer.py), and each frame
    # read came from one of its queues
    assert c.get("link.tap_steering") == 1, c
    assert c["eth0.rx_packets"] == sum(c["link.tap_rx_" + k] for k in STEER_CLASSES), c
    return c, tap


STEER_CLASSES = ("ours", "rest", "syn_again", "syn", "frag")


def check_alongside(r, kind):
    """What ran beside the flood: the transfer intact, the echo stream in step, ping."""
    assert r["sha256"] == pattern_sha(TRANSFER), "%s flood: HTTP transfer corrupted or cut" % kind
    assert r["bad"] == 0, "%s flood: echo stream corrupted: %r" % (kind, r)
    # a fragment flood's later fragments carry no ports: without the steering program the
    # TAP hashed the whole flood onto one queue, ours in about 1 run in 3 (a 5 s stall);
    # now every fragment has a queue of its own, beside the flows we talk to
    assert r["fails"] == [], "%s flood: echo stream broke: %r" % (kind, r)
    assert max(r["rtts"]) <= RTT_MAX_S, "%s flood: echo RTT max %.3f s" % (kind, max(r["rtts"]))
    loss = 1.0 - r["ping_got"] / float(r["ping_sent"] or 1)
    assert loss <= PING_LOSS_MAX, "%s flood: ping loss %.0f%% (%d/%d)" % (
        kind, loss * 100, r["ping_got"], r["ping_sent"])


def check_new_connections(r, c, kind):
    """New connections beside a SYN flood: one started every 0.5 s (overlapping), each given
    5 s, in which Linux sends its SYN 5 times (net.ipv4.tcp_syn_linear_timeouts: at 0, 1, 2,
    3 and 4 s). The first SYN lands on the TAP's SYN queue with the flood and is lost there
    unless the stack reads it in time (it reads 25-45 % of what a flood offers on a loaded
    2-core machine); a retransmission 1 s later lands on AGAIN (hal/tapsteer.py), which
    holds only the SYNs sent again (flow and sequence number), is read, and answered with a
    cookie past the poll's budget (rx_syn_again). Every one gets through, beside hping3's
    one-source flood too (session 8: 1 in 20-50 failed there, all five SYNs dropped at
    the TAP's AGAIN queue, which 1 flood SYN in 8 crowded)."""
    new = r["new"]
    ok = sum(1 for good, _ in new if good)
    assert len(new) >= 4 and ok == len(new), (
        "%s flood: %d of %d new connections (s taken, False: failed): %r; %r" % (
            kind, ok, len(new), new, {k: v for k, v in c.items() if "syn" in k}))


def check_memory(r, kind):
    assert r["rss_peak_kb"] <= RSS_BOUND_KB, "%s flood: RSS %d kB over the %d kB bound" % (
        kind, r["rss_peak_kb"], RSS_BOUND_KB)
    settled = r["rss"][1] if len(r["rss"]) > 1 else r["rss_start_kb"]
    assert r["rss_peak_kb"] - settled <= RSS_GROWTH_KB, "%s flood: RSS grew %r" % (kind, r["rss"])


def check_offered(r, kind):
    """Every frame hping3 sent reached the TAP and was either read by the stack or dropped
    (and counted) at its queue; the TAP's queueing discipline dropped none on the way."""
    assert r["hping_sent"], "%s flood: hping3 sent nothing: %s" % (kind, r)
    assert r["tap_read"] + r["tap_dropped"] >= r["hping_sent"], r
    assert r["qdisc_dropped"] == 0, r


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_stack_stays_up_and_counts_every_frame_under_a_full_speed_flood(ns, stack, kind):
    r = run_flood(ns, stack, kind, FLOOD_SECS, transfer=TRANSFER)
    c, _ = stop_and_account(ns, stack)
    check_offered(r, kind)
    check_memory(r, kind)
    check_alongside(r, kind)
    # the flood's frames went where its kind says, each counted there
    syns = c["link.tap_rx_syn"] + c["link.tap_rx_syn_again"]
    if kind.startswith("syn"):
        # every SYN went to the SYN queues (the few not from the flood too)
        assert syns > r["tap_read"] // 3 and c["link.tap_rx_frag"] == 0, c
    else:
        assert syns < 100 and (c["link.tap_rx_frag"] > r["tap_read"] // 2) == \
            kind.startswith("frag"), c
    if kind.startswith("syn") and kind != "syn-closed-port":
        # a SYN read: a SYN-RECEIVED connection, or a full SYN queue (then a cookie or a
        # drop), unless IP dropped it first (a random source may be a martian); when Linux
        # answers our SYN-ACKs with RSTs (hping3's source is its own address), the slots
        # they free still count for 1 s, so the queue is full all the same (syn_queue_churn)
        assert c.get("tcp.conn_passive", 0) + c.get("tcp.syn_queue_full", 0) > syns // 2, c
    elif kind == "syn-closed-port":
        assert c.get("tcp.rx_no_conn", 0) > r["tap_read"] // 2, c
    elif kind == "ack":
        assert c.get("tcp.rx_listen_ack", 0) > r["tap_read"] // 2, c
    elif kind == "fin":
        assert c.get("tcp.rx_listen_no_syn", 0) > r["tap_read"] // 2, c
    elif kind.startswith("frag"):
        assert c.get("ip.rx_fragments", 0) > r["tap_read"] // 2, c
    elif kind == "udp":
        assert c.get("udp.rx_datagrams", c.get("udp.rx_packets", 0)) > r["tap_read"] // 2, c


def test_established_connection_keeps_echoing_under_a_syn_flood(ns, stack):
    """Issue 8: while hping3 floods SYNs at full speed at one served port (every SYN past
    the full SYN queue answered with a cookie), 512-byte echo round trips every 50 ms on an
    established connection all complete within 1 s, new connections succeed (SYN cookies),
    ping loss stays low, memory stays bounded."""
    r = run_flood(ns, stack, "syn", 2 * FLOOD_SECS, transfer=TRANSFER, overlap=True)
    c, _ = stop_and_account(ns, stack)
    check_offered(r, "syn")
    check_memory(r, "syn")
    rt = r["rtts"]
    assert r["fails"] == [] and r["bad"] == 0, r
    assert max(rt) <= RTT_MAX_S, "echo RTT median %.3f p99 %.3f max %.3f s (%d round trips)" % (
        percentile(rt, 0.5), percentile(rt, 0.99), max(rt), len(rt))
    # a round trip every 50 ms (or right after a slower one): the stream kept going most of
    # the time, not just within the 1 s bound (issue 8's criterion, above)
    assert len(rt) >= int(2 * FLOOD_SECS / 0.05 * 0.6), len(rt)
    check_alongside(r, "syn")
    # Linux answers our SYN-ACKs to its flood (it never sent those SYNs) with RSTs, each
    # ending a half-open connection at once; those still count in the SYN queue for 1 s
    # (syn_queue_churn), so past TCP_SYN_QUEUE (256) of them a second the flood gets
    # cookies, which keep no state: a TCB for at most 256 flood SYNs a second, not for
    # every one read (session 7: each cost a TCB, a SYN-ACK and a RST read on queue 0, and
    # the echo's median round trip was 33 ms). The RSTs answering cookies reach the listener.
    secs = 2 * FLOOD_SECS
    assert c.get("tcp.syn_queue_churn", 0) > 1000 and c.get("tcp.syncookies_sent", 0) > 1000, c
    assert c.get("tcp.rx_listen_rst", 0) > 1000, c
    assert c.get("tcp.conn_passive", 0) <= 256 * (secs + 2) + len(r["new"]) + 10, c
    check_new_connections(r, c, "syn")


def test_new_connections_succeed_under_a_random_source_syn_flood_to_their_port(ns, stack):
    """RFC 4987: SYNs from random sources to the echo port never complete, so they fill its
    SYN queue; past that, SYN cookies still let a real client in (a new connection every
    0.5 s, each within its 5 s), and the established connection keeps echoing."""
    r = run_flood(ns, stack, "syn-rand-source", FLOOD_SECS, transfer=TRANSFER)
    c, _ = stop_and_account(ns, stack)
    check_offered(r, "syn-rand-source")
    check_memory(r, "syn-rand-source")
    assert max(r["rtts"]) <= RTT_MAX_S, r["rtts"]
    check_new_connections(r, c, "syn-rand-source")
    # the SYN queue filled and the flood's SYNs (no route back to their sources) were
    # dropped before a cookie; the clients' SYNs (all but one or two once it was full) were
    # answered with cookies
    assert c.get("tcp.syncookies_no_route", 0) > 1000 and c.get("tcp.syncookies_ok", 0) >= \
        len(r["new"]) - 2, c


def test_without_the_program_a_fragment_flood_on_the_stacks_own_queue_moves_it(ns):
    """USTACK_TAP_STEER=0 (or no bpf): the kernel's own flow steering puts a fragment flood,
    whose frames all hash alike (addresses and protocol only), on one queue; from a source
    it hashes onto queue 0 (probed first: tests/floodkit.py source_on_queue), the flood
    shares the queue the stack sends on and reads first. The reader without the program
    moves its first queue off one that a flood keeps full while another runs dry (hal/tap.py
    SWITCH): the stack stays up, counts every frame, answers pings, and the transfer goes on. The echo
    connection's flow hashes where the kernel puts it and may stall behind the flood for
    seconds (seen in 2 of 2 runs at 08:10 on the lead's machine, none in a helper's 3):
    telling the flows apart is what the steering program is for. Into a TAP of one queue
    the same flood took the echo's median round trip to 68 ms, its slowest to 4.1 s and
    ping loss to 36 % (benchmarks/floods-steer.md)."""
    source = source_on_queue(ns, 0)
    assert source, "no address of 192.0.2.0/24 hashes onto queue 0"
    st = StackProc(ns, "--serve", SERVE, env={"USTACK_TAP_STEER": "0"})
    try:
        ns.run(["ping", "-n", "-c", "2", "-i", "0.1", STACK_IP])
        r = run_flood(ns, st, "frag", FLOOD_SECS, transfer=TRANSFER, source=source)
        c, _ = stop_and_account(ns, st, steered=False)
    finally:
        if st.p.poll() is None:
            st.stop()
    check_offered(r, "frag")
    check_memory(r, "frag")
    assert r["sha256"] == pattern_sha(TRANSFER), "HTTP transfer corrupted or cut: %r" % r
    assert r["bad"] == 0, "echo stream corrupted: %r" % r
    # ping shares the flood's queue here too: 23 of 40 answered in one CI run; alive is what
    # the fallback can promise (the program keeps ping loss at 0 %: test_stack_stays_up...)
    assert r["ping_got"] >= 1, r
    assert c.get("link.tap_queue_moves", 0) >= 1, c
    assert c.get("ip.rx_fragments", 0) > r["tap_read"] // 2, c


def nmap(ns, *args, timeout=120):
    r = ns.run(["nmap", "-n", "-Pn", "-T4", "--max-retries", "1", "-oG", "-"] + list(args) +
               [STACK_IP], timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_nmap_scans_find_exactly_the_served_ports_and_the_stack_keeps_answering(ns, stack):
    out = nmap(ns, "-sS", "-p", "1-100")
    opened = sorted(int(p) for p in re.findall(r"(\d+)/open/tcp", out))
    assert opened == [7, 9, 19, 80], out
    # every other probed TCP port answered with a RST: nmap calls it closed, not filtered
    assert "Ignored State: closed (96)" in out, out
    # -sV: the services answer nmap's probes as what they are (discard, 9, never answers)
    out = nmap(ns, "-sS", "-sV", "--version-light", "-p", "7,19,80")
    for port, name in ((7, "echo"), (19, "chargen"), (80, "http")):
        assert re.search(r"%d/open/tcp//%s" % (port, name), out), out
    # -O: fingerprinting's odd probes (ECN, bogus flags, closed ports, UDP) leave it standing
    nmap(ns, "-sS", "-O", "--max-os-tries", "1", "-p", "7,81")
    udp = nmap(ns, "-sU", "-p", "1-40")
    assert re.search(r"\b7/open/udp", udp), udp   # echo answers
    assert re.search(r"\b9/open\|filtered/udp", udp), udp   # discard stays silent
    # the stack still answers after the scans
    r = ns.run(["ping", "-n", "-c", "5", "-i", "0.05", "-W", "1", STACK_IP])
    assert " 0% packet loss" in r.stdout, r.stdout
    c, _ = stop_and_account(ns, stack)
    assert c.get("tcp.tx_rst", 0) >= 96, c   # each probed closed TCP port got its RST
    # ICMP port unreachable for the closed UDP ports probed back to back: rate-limited
    assert c.get("icmp.tx_rate_limited", 0) > 0 and c.get("icmp.tx_errors", 0) > 0, c


def test_the_tap_has_8_queues_and_a_tap_made_without_multi_queue_still_opens(ns):
    """hal/tap.py: `ustack up` asks for 8 queues (boards/pc_tap.py TAP_QUEUES); a persistent
    TAP made by `ip tuntap add` without multi_queue is opened with its one queue instead."""
    r = ns.python(
        "import subprocess\n"
        "from ustack.hal.tap import Tap\n"
        "subprocess.run(['ip', 'tuntap', 'add', 'dev', 'tq0', 'mode', 'tap'], check=True)\n"
        "a = Tap('tq0', queues=8)\n"
        "b = Tap('tq1', queues=8)\n"
        "print(len(a.fds), len(b.fds), open('/sys/class/net/tq1/tun_flags').read().strip())\n")
    assert r.stdout.split() == ["1", "8", "0x1102"], r.stdout + r.stderr  # IFF_MULTI_QUEUE
