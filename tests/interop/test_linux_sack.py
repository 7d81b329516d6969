"""SACK-based loss recovery against the Linux kernel: Linux downloads from ustack over a TAP in
a throwaway netns while nftables drops ~2 % of the data segments Linux would receive (the
kernel here has no netem; `numgen random` is the impairment). The body arrives intact, the
recovery is SACK's (RFC 6675) and ustack retransmits about what was dropped - no
go-back-N after timeouts, no storm of spurious retransmissions. Then both directions over
vde2's lossy, reordering path (tests/impaired.py) read through `ss -ti`: Linux counts the
D-SACKs our receiver sends (RFC 2883)."""
import re
import subprocess
import sys
import time

import pytest

from tests import pcapcheck
from tests.conftest import needs_netns
from tests.netns import Netns, StackProc, STACK_IP
from tests.interop.test_linux_tcp import pattern_sha, MB

pytestmark = [needs_netns]

SIZE = 16 * MB


@pytest.fixture
def ns():
    n = Netns("sack")
    yield n
    n.close()


def drop_data_segments(ns, percent):
    """Linux's input drops percent % of ustack's data segments (not its SYN-ACK, pure ACKs
    or FIN: only what SACK recovery repairs), counting them."""
    rules = ("table ip sackloss {\n"
             " chain input {\n"
             "  type filter hook input priority 0; policy accept;\n"
             "  ip saddr %s tcp sport 80 ip length > 200 numgen random mod 100 < %d "
             "counter drop\n"
             " }\n"
             "}\n" % (STACK_IP, percent))
    r = ns.run(["nft", "-f", "-"], input=rules)
    assert r.returncode == 0, r.stderr


def dropped(ns):
    r = ns.run(["nft", "list", "table", "ip", "sackloss"])
    m = re.search(r"counter packets (\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1))


def download(ns, n):
    t0 = time.monotonic()
    r = subprocess.run(ns.cmd(["sh", "-c", "curl -s -m 240 http://%s/bytes/%d | sha256sum"
                               % (STACK_IP, n)]), capture_output=True, text=True, timeout=260)
    return r.stdout.split()[0], time.monotonic() - t0


def measure(ns, *flags):
    """The same download without and with the drops: (seconds clean, seconds lossy, frames
    dropped, ustack's counters)."""
    stack = StackProc(ns, "--serve", "http", *flags)
    try:
        digest, clean_s = download(ns, SIZE)
        assert digest == pattern_sha(SIZE)
        drop_data_segments(ns, 2)
        digest, lossy_s = download(ns, SIZE)
        assert digest == pattern_sha(SIZE)
        lost = dropped(ns)
    finally:
        c = stack.stop()
    print("clean %.2fs, 2%% loss %.2fs (%d dropped): %s" % (
        clean_s, lossy_s, lost, {k: v for k, v in c.items() if k.startswith("tcp.") and v and
                                 ("sack" in k or "rexmit" in k or "retrans" in k or
                                  "rto" in k or "tlp" in k or "dup" in k)}))
    return clean_s, lossy_s, lost, c


def tshark(pcap, flt, *extra):
    # TCP reassembly for the layers above off: with it, tshark's HTTP view flags a resend
    # cut at other boundaries than the original (a probe or go-back-N segment reaching past
    # what the body's reassembly already completed) as a "Reassembly error" - the flaky
    # failure this file had; a finding about tshark's reassembly of a lossy capture, not
    # about the bytes on the wire, which frames_off_pattern checks one by one
    t = subprocess.run(["tshark", "-n", "-r", pcap, "-o", "tcp.desegment_tcp_streams:FALSE",
                        "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                        "-Y", flt] + list(extra), capture_output=True, text=True, timeout=300)
    assert t.returncode == 0, t.stderr
    return t.stdout


PATTERN = bytes(range(251)) * 262  # (64 KB and more) the body's pattern, byte i = i mod 251 (/bytes/N)


def frames_off_pattern(pcap):
    """ustack's data frames (resends included) whose bytes differ from the body's pattern at
    their offset: every copy of every byte on the wire, not only the stream Linux kept."""
    out = tshark(pcap, "ip.src == %s && tcp.len > 0" % STACK_IP, "-o",
                 "tcp.relative_sequence_numbers:TRUE", "-T", "fields", "-e", "tcp.seq",
                 "-e", "tcp.payload")
    rows = [ln.split("\t") for ln in out.splitlines()]
    first = bytes.fromhex(rows[0][1])
    head = first.index(b"\r\n\r\n") + 4      # the HTTP response head, then the body
    bad = []
    for seq, payload in rows:
        data = bytes.fromhex(payload)
        off = int(seq) - 1 - head
        if off < 0:
            data, off = data[-off:], 0
        k = off % 251
        if data != PATTERN[k:k + len(data)]:
            bad.append(int(seq))
    return bad


def test_linux_downloads_intact_at_2_percent_loss_with_sack_recovery(ns, tmp_path):
    pcap = str(tmp_path / "sack.pcap")
    # per-frame loss at the TAP: plain frames (offloads would drop whole TSO segments)
    clean_s, lossy_s, lost, c = measure(ns, "--pcap", pcap, "--offload", "off")
    # the capture (ustack's side of the drops): well-formed SACK options both ways, good
    # checksums (Linux's 0xffff excused: tests/pcapcheck.py), no ACK for a segment that was
    # never sent
    bad = "\n".join(pcapcheck.tshark(pcap, pcapcheck.bad_frames(STACK_IP) +
                                      " || tcp.analysis.ack_lost_segment"))
    assert bad.strip() == "", bad[:2000]
    assert frames_off_pattern(pcap) == []          # every resend carried the original bytes
    assert tshark(pcap, "tcp.options.sack_le").count("\n") > 50
    assert lost > 100                              # ~2 % of ~11000 data segments
    assert c["tcp.rx_sack_blocks"] > 0 and c["tcp.sack_recoveries"] > 0
    assert c.get("tcp.rx_sack_bad", 0) == 0
    # every dropped segment sent again, hardly anything more (a lost retransmission or a
    # probe is sent twice); an RTO would resend a whole window (go-back-N)
    assert lost <= c["tcp.tx_retransmits"] <= lost + lost // 4 + 5
    assert c.get("tcp.rto_expired", 0) <= 2
    assert c["pbuf.free"] == c["pbuf.count"]
    # issue 12's target: at 2 % loss at least half the loss-free goodput (a second of slack
    # for a busy machine's scheduling)
    assert lossy_s <= 2 * clean_s + 1.0


# ---- both ways over a lossy, reordering path, read through ss -ti -----------------------------
IMP_N = 2 * MB
DSACK_PORT = 9  # ustack up's discard service


def ss_info(ns, dst):
    """The info fields of `ss -tin dst <dst>` (Linux's view of one connection): "k:v" tokens
    as strings, bare words (sack, ts, cubic ...) as True; {} when there is none."""
    r = ns.run(["ss", "-tinH", "dst", dst])
    d = {}
    for tok in r.stdout.split():
        k, sep, v = tok.partition(":")
        d[k] = v if sep else True
    return d if "rto" in d else {}


def nstat(ns, *names):
    """The namespace's own TCP MIB counters (absolute, the history file left alone)."""
    r = ns.run(["nstat", "-asz"] + list(names))
    assert r.returncode == 0, r.stderr
    d = dict.fromkeys(names, 0)
    for ln in r.stdout.splitlines():
        f = ln.split()
        if len(f) >= 2 and f[0] in d:
            d[f[0]] = int(f[1])
    return d


def sampled_while(p, sample, every=0.1):
    """Call sample() until the process p ends; the last non-empty result (Linux forgets a
    connection's ss fields once it is closed, so they are read while it runs)."""
    last = {}
    while p.poll() is None:
        s = sample()
        if s:
            last = s
        time.sleep(every)
    return last


@pytest.fixture
def imp():
    from tests.impaired import ImpairedPath
    p = ImpairedPath(loss=2, reorder=True, tag="sss")
    yield p
    p.close()


def test_both_ways_through_loss_and_reordering_ss_ti_shows_sack_recovery_and_our_dsacks(
        imp, tmp_path):
    """Issue 12's interop run, short: 2 MB each way over vde2's wirefilter (2 % loss each way,
    1 ms jitter reordering). Linux -> ustack: Linux's `ss -ti` shows its retransmissions, the reordering it measured and the D-SACKs it got from us (dsack_dups,
    TcpExtTCPDSACKRecv: RFC 2883 generation, which its undo and reordering logic read), and
    ustack's ACKs carry D-SACK blocks (first block below the ACK number). ustack -> Linux:
    `ustack ss -ti` shows sack and rack on the connection, and the recovery was SACK's and
    RACK's, not timeouts' (tests/interop/test_linux_sack.py's own download above checks the
    retransmission count against the drops)."""
    from tests.impaired import FETCH, SENDER, py, pattern_sha
    pcap = tmp_path / "ustack.pcap"
    stack = imp.start_stack("--serve", "discard,http", "--pcap", str(pcap))
    # Linux -> ustack: B sends to ustack's discard service; ss -ti sampled on B meanwhile
    k = ("TcpExtTCPDSACKRecv", "TcpExtTCPSACKReorder", "TcpRetransSegs", "TcpExtTCPTimeouts")
    n0 = nstat(imp.b, *k)
    snd = imp.b.popen([sys.executable, "-c", SENDER, STACK_IP, str(DSACK_PORT), str(IMP_N), "0",
                       "cubic"])
    lx = sampled_while(snd, lambda: ss_info(imp.b, STACK_IP))
    out = snd.communicate(timeout=60)[0]
    assert snd.returncode == 0 and "SENT %d" % IMP_N in out, out
    n1 = nstat(imp.b, *k)
    got = dict((x, n1[x] - n0[x]) for x in k)
    # ustack -> Linux: B fetches from ustack's http; `ustack ss -ti` sampled in ns a
    # 4x as much this way: ustack now sends 2 MB through this path in well under the time
    # one `ustack ss` takes, so the connection was gone before the first sample (CI, issue 12)
    n_up = 4 * IMP_N
    fetch = imp.b.popen([sys.executable, "-c", FETCH, STACK_IP, str(n_up), "0"])
    us = sampled_while(fetch, lambda: _ustack_ss(imp.a), every=0.05)
    out = fetch.communicate(timeout=60)[0]
    f = [ln for ln in out.splitlines() if ln.startswith("FETCH ")]
    assert f and f[0].split()[1:3] == [str(n_up), pattern_sha(n_up)], out
    c = imp.stop_stack()
    print("Linux sender: ss %s nstat %s; ustack ss: %s; ustack: %s" % (
        lx, got, us, {x: v for x, v in c.items() if v and x.startswith("tcp.") and
                      ("sack" in x or "rto" in x or "rack" in x or "retrans" in x)}))
    # Linux's side: segments retransmitted, reordering measured from SACK blocks (its ss
    # prints no option words for this connection here; reord_seen and dsack_dups exist only
    # with SACK), our D-SACKs counted both in its ss -ti and its MIB
    assert int(lx.get("retrans", "0/0").split("/")[1]) > 0, lx
    assert int(lx.get("reordering", "3")) > 3 or int(lx.get("reord_seen", "0")) > 0, lx
    assert int(lx.get("dsack_dups", "0")) > 0, lx
    assert got["TcpExtTCPDSACKRecv"] > 0 and c["tcp.dsack_sent"] > 0, (got, c)
    # ... and on the wire: ACKs from ustack whose first SACK block lies below the ACK
    dsacks = tshark(str(pcap), "ip.src == %s && tcp.len == 0 && tcp.options.sack_le && "
                               "tcp.options.sack_le < tcp.ack" % STACK_IP)
    assert dsacks.count("\n") > 0
    # ustack's side: SACK and RACK on the connection; losses repaired by SACK recovery
    assert "sack" in us and "rack" in us, us
    assert c["tcp.sack_recoveries"] > 0 and c.get("tcp.rx_sack_bad", 0) == 0
    assert c.get("tcp.rto_expired", 0) <= 2, c


def _ustack_ss(ns):
    """`ustack ss -ti`'s info line for the connection to Linux B (its words), or ""."""
    r = ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "ss", "-ti"])
    lines = r.stdout.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("tcp") and "ESTAB" in ln and ":80 " in ln and i + 1 < len(lines):
            return lines[i + 1].split()
    return ""
