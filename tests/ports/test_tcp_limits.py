"""Every board configures TCP within its limits (issue 8): the configuration is validated
when it is made, so no board can configure itself into a corner where half-open
connections hold every TCB; and the unit tests' copy of the W5500-EVB-Pico sizes (the
smallest board, tests/unit/test_tcp_hardening.py) is the board's own."""
import pytest

from ustack.boards import load, names
from ustack.core.config import make_config


@pytest.mark.parametrize("name", names())
def test_every_board_config_validates_with_syn_queue_below_tcb_count(name):
    cfg = make_config(getattr(load(name), "CONFIG", None))
    assert 1 <= cfg["TCP_SYN_QUEUE"] < cfg["TCP_MAX_CONNS"]
    assert cfg["TCP_MAX_ORPHANS"] >= 1 and cfg["TCP_SYNACK_RETRIES"] >= 1


def test_unit_tests_use_the_w5500_evb_pico_sizes():
    from tests.unit.test_tcp_hardening import W5500_EVB_PICO
    assert W5500_EVB_PICO == load("w5500_evb_pico").CONFIG


@pytest.mark.parametrize("bad", [
    {"TCP_MAX_CONNS": 4, "TCP_SYN_QUEUE": 4},
    {"TCP_MAX_CONNS": 4, "TCP_SYN_QUEUE": 9},
    {"TCP_MAX_CONNS": 1},
    {"TCP_CHALLENGE_ACK_GLOBAL": 1},
    {"TCP_MAX_CONNS": 4, "TCP_MAX_ORPHANS": 4},
    {"TCP_ORPHAN_RETRIES": 0},
    {"TCP_FIN_TIMEOUT_MS": 10},
    {"TCP_SYNACK_RETRIES": 0},
])
def test_inconsistent_tcp_limits_are_rejected_when_the_config_is_made(bad):
    with pytest.raises(ValueError) as e:
        make_config(bad)
    assert str(e.value).startswith("config: TCP_")


def test_syn_queue_and_orphan_limit_default_to_half_the_tcb_count():
    assert make_config()["TCP_SYN_QUEUE"] == 8 and make_config()["TCP_MAX_ORPHANS"] == 8
    c = make_config({"TCP_MAX_CONNS": 2})
    assert c["TCP_SYN_QUEUE"] == 1 and c["TCP_MAX_ORPHANS"] == 1
