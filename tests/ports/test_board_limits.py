"""Every board's configuration is valid, and at the embedded boards' own sizes no unread
socket, raw socket or stranger's ARP can take the packet-buffer pool (issue 8, hole 3).
CPython only: the board modules are not staged for MicroPython's unit runner."""
import pytest

from ustack import boards
from ustack.core import socket as so
from ustack.core.config import make_config
from tests.exhaust import (unread_sockets_leave_the_stack_working,
                           arp_strangers_leave_the_stack_working)
from tests.twostack import Bench, IP_B

EMBEDDED = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500")


def board_config(name):
    return dict(getattr(boards.load(name), "CONFIG", {}))


@pytest.mark.parametrize("name", boards.names())
def test_every_board_config_passes_validation(name):
    cfg = make_config(board_config(name))
    assert cfg["SOCK_QUEUE_PBUFS"] + cfg["ARP_PENDING_PBUFS"] + cfg["PBUF_RESERVE_TX"] < \
        cfg["PBUF_COUNT"]


def test_the_embedded_boards_are_the_small_ones():
    for name in EMBEDDED:
        assert board_config(name)["PBUF_COUNT"] <= 10


def _close(b, socks):
    for s in socks:
        s.close()
    b.pump()
    assert b.pools_full()


@pytest.mark.parametrize("name", EMBEDDED)
def test_unread_udp_sockets_at_board_sizes_leave_arp_ping_and_tcp_working(name):
    cfg = board_config(name)
    # B: the unread sockets + a listener + its accepted connection within SOCKETS
    b, socks = unread_sockets_leave_the_stack_working(cfg, nsock=cfg["SOCKETS"] - 2)
    _close(b, socks)


@pytest.mark.parametrize("name", EMBEDDED)
def test_answers_waiting_for_arp_at_board_sizes_leave_the_stack_working(name):
    arp_strangers_leave_the_stack_working(board_config(name))


@pytest.mark.parametrize("name", EMBEDDED)
def test_raw_socket_and_big_ping_at_board_sizes(name):
    """Hole 1 at a board's sizes: a ping as big as reassembly allows, with an unread raw
    ICMP socket open, repeated: the stack answers every one, the raw socket keeps what its
    budget allows and counts the rest."""
    cfg = board_config(name)
    b = Bench(cfg)
    b.a.ping(IP_B)
    r = b.b.socket(so.AF_INET, so.SOCK_RAW, so.IPPROTO_ICMP)
    r.setblocking(False)
    size = cfg["REASS_SIZE"] - 8 - 20 * 2
    for i in range(4):
        assert b.a.ping(IP_B, count=1, size=size, timeout_ms=500).received == 1
    c = b.b.counters()
    assert c["raw.rx_delivered"] >= 1 and c["raw.rx_rcvbuf"] + c["raw.rx_delivered"] == 4
    for i in range(c["raw.rx_delivered"]):
        assert len(r.recv(65535)) == size + 28
    _close(b, [r])
