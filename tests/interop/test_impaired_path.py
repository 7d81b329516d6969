"""ustack and the Linux kernel over a real impaired path (issue 12): vde2's wirefilter drops 2 %
of the frames each way and reorders them (1 ms jitter, no FIFO) between ustack's namespace and
Linux's (tests/impaired.py). 2 MB each way arrive intact (SHA-256); ustack resends about what
the path dropped (no retransmission storm); and tshark finds nothing malformed in ustack's
pcap: no bad SACK option, no bad checksum, no ACK for a segment never seen."""
import subprocess

import pytest

from tests.conftest import needs_netns
from tests.impaired import (B_IP, STACK_IP, FETCH, SENDER, ImpairedPath, pattern_sha, py)

pytestmark = [needs_netns]
MB = 1000 * 1000
N = 2 * MB


@pytest.fixture
def path():
    p = ImpairedPath(loss=2, reorder=True, tag="impt")
    yield p
    p.close()


def no_storm(retransmits, dropped):
    # every frame the path dropped costs about one resend; reordering may cost a few more
    return retransmits <= 3 * dropped + 10


def tshark_errors(pcap):
    """Frames tshark flags as malformed, with a bad checksum, or ACKing unseen data."""
    r = subprocess.run(["tshark", "-n", "-r", str(pcap), "-o", "tcp.check_checksum:TRUE",
                        "-o", "ip.check_checksum:TRUE", "-Y",
                        "_ws.malformed || tcp.analysis.ack_lost_segment || "
                        "tcp.checksum.status == 0 || ip.checksum.status == 0 || "
                        "_ws.expert.severity == error"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_2mb_each_way_through_2_percent_loss_and_reordering(path, tmp_path):
    pcap = tmp_path / "ustack.pcap"
    path.start_stack("--serve", "discard,http", "--pcap", str(pcap))
    before = path.frames()
    # ustack -> Linux: B fetches /bytes/N from ustack's http service
    got, sha, _ = py(path.b, FETCH, STACK_IP, N, 0)[1:]
    assert (int(got), sha) == (N, pattern_sha(N))
    # Linux -> ustack: B sends N bytes to ustack's discard service
    sent = int(py(path.b, SENDER, STACK_IP, 9, N, 0, "reno")[1])
    assert sent == N
    to_b, to_a = path.dropped_since(before)
    c = path.stop_stack()
    print("dropped %d to Linux, %d to ustack; ustack: %d retransmissions, %d bytes received"
          % (to_b, to_a, c["tcp.tx_retransmits"], c["tcp.rx_data_bytes"]))
    assert c["tcp.rx_data_bytes"] >= N  # discard took every byte (plus the HTTP request)
    assert to_b > 10 and to_a > 10  # the path really dropped ~2 % each way
    assert no_storm(c["tcp.tx_retransmits"], to_b), (c["tcp.tx_retransmits"], to_b)
    bad = tshark_errors(pcap)
    assert bad == "", bad
