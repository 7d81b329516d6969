"""Configuration refused where it is made (issue 8, hole 11): every board's config validates,
and `ustack up` with a bad --config or --mtu prints one line naming the flag, exits non-zero
and creates nothing (no TAP left in its namespace), under either runtime."""
import sys

import pytest

from ustack import boards
from ustack.core.config import make_config
from ustack.core.stack import MIN_MTU
from tests.netns import Netns


def test_every_board_config_validates():
    names = boards.names()
    assert len(names) >= 8
    for name in names:
        b = boards.load(name)
        cfg = make_config(getattr(b, "CONFIG", None) or None)
        assert MIN_MTU <= getattr(b, "MTU", 1500) <= cfg["PBUF_SIZE"] - 14, name


BAD = (
    (["--config", "REASS_SIZE=65535"], "--config REASS_SIZE=65535"),
    (["--config", "TCP_SACK=1"], "--config TCP_SACK=1"),
    (["--config", "PBUF_COUNT=many"], "--config PBUF_COUNT=many"),
    (["--config", "TCP_CC=vegas"], "--config TCP_CC=vegas"),
    (["--config", "NO_SUCH_KEY=1"], "--config NO_SUCH_KEY=1"),
    (["--config", "TCP_RTO_MAX_MS=30000"], "--config TCP_RTO_MAX_MS=30000"),  # RFC 6298 2.5
    (["--config", "TCP_DELACK_MS=500"], "--config TCP_DELACK_MS=500"),  # RFC 9293 3.8.6.3
    (["--config", "TCP_RTO_MIN_MS=2000"], "--config"),  # above TCP_RTO_INIT_MS
    (["--mtu", "67"], "--mtu 67"),
    (["--mtu", "0"], "--mtu 0"),
    (["--mtu", "9000"], "--mtu 9000"),
    (["--ip", "192.0.2.300/24"], "--ip"),
    (["--dhcp", "--ip", "192.0.2.2/24"], "--dhcp"),
    (["--dhcp", "--gateway", "192.0.2.1"], "--dhcp"),
    (["--dhcp", "--driver", "slip-pty"], "--dhcp"),
    (["--serve", "echo,bogus"], "--serve bogus"),
)


@pytest.fixture(scope="module")
def ns():
    n = Netns("cfg")
    yield n
    n.close()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("flags,named", BAD)
def test_ustack_up_refuses_a_bad_flag_in_one_line_and_creates_nothing(ns, runtime, flags, named):
    r = ns.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up", "--tap", "ustkcfg0",
                "--host-ip", "192.0.2.1/24", "--runtime", runtime] + flags, timeout=60)
    assert r.returncode != 0
    out = (r.stdout + r.stderr).strip().splitlines()
    assert len(out) == 1, out
    assert out[0].startswith("ustack: " + named), out
    links = ns.run(["ip", "-o", "link", "show"]).stdout
    assert "ustkcfg0" not in links
    assert len(links.strip().splitlines()) == 1  # only lo
