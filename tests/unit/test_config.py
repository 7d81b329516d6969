"""Configuration that would hang or crash the stack is refused when it is made (issue 8,
hole 11): every config key has a type and a range, every add_interface / set_address /
add_route argument is checked, and the message names the key. (Every board validates: tests/ports/test_config_cli.py.)"""
import pytest

from ustack.core.config import DEFAULTS, make_config
from ustack.core.config_check import RANGES, CHOICES
from ustack.core.stack import Stack
from tests.feed import FeedDriver


def refused(overrides, *words):
    with pytest.raises(ValueError) as e:
        make_config(overrides)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    return msg


def test_reass_size_above_the_largest_ipv4_payload_is_refused():
    # RFC 791: total length is 16 bits; 65535 - a 20-byte header = 65515 bytes of payload
    refused({"REASS_SIZE": 65535}, "REASS_SIZE", "65515")
    assert make_config({"REASS_SIZE": 65515})["REASS_SIZE"] == 65515


def test_reass_size_below_what_every_host_must_accept_is_refused():
    # RFC 791 3.1 / RFC 1122 3.3.2: a 576-byte datagram, i.e. 556 bytes of payload
    refused({"REASS_SIZE": 500}, "REASS_SIZE")


def test_every_int_key_refuses_other_types_bools_and_out_of_range_values():
    for k in DEFAULTS:
        d = DEFAULTS[k]
        if d is True or d is False or not isinstance(d, int):
            continue
        refused({k: str(d)}, k)
        refused({k: float(d)}, k)
        refused({k: True}, k)
        lo, hi = RANGES.get(k, (0, None))
        refused({k: lo - 1}, k)
        if hi is not None:
            refused({k: hi + 1}, k)
        if k not in ORDERED:
            assert make_config({k: lo})[k] == lo


# keys whose lowest value conflicts with another key's default (checked as a pair instead)
# or whose 0 means "derived from another key" (TCP_SYN_QUEUE, TCP_MAX_ORPHANS)
ORDERED = ("EPHEMERAL_HIGH", "TCP_RTO_MAX_MS", "TCP_RTO_INIT_MS", "TCP_SYN_QUEUE",
           "TCP_MAX_ORPHANS", "DHCP_RETRY_MAX_MS", "RIP_TIMEOUT_MS")


def test_zero_tcp_queue_sizes_are_derived_below_the_connection_count():
    c = make_config({"TCP_MAX_CONNS": 4, "TCP_SYN_QUEUE": 0, "TCP_MAX_ORPHANS": 0})
    assert c["TCP_SYN_QUEUE"] == 2 and c["TCP_MAX_ORPHANS"] == 2


def test_every_bool_key_refuses_ints_and_strings():
    n = 0
    for k in DEFAULTS:
        if DEFAULTS[k] is True or DEFAULTS[k] is False:
            refused({k: 1}, k, "True or False")
            refused({k: "yes"}, k)
            assert make_config({k: not DEFAULTS[k]})[k] is (not DEFAULTS[k])
            n += 1
    assert n >= 5


def test_string_keys_take_one_of_their_values():
    refused({"TCP_CC": "cubic-ish"}, "TCP_CC", "newreno")
    refused({"TCP_CC": 1}, "TCP_CC")
    for k in CHOICES:
        for v in CHOICES[k]:
            assert make_config({k: v})[k] == v


def test_unknown_keys_and_inconsistent_combinations_are_refused():
    refused({"PBUF_CONT": 8}, "PBUF_CONT")
    refused({"EPHEMERAL_LOW": 60000, "EPHEMERAL_HIGH": 50000}, "EPHEMERAL")
    refused({"TCP_RTO_MIN_MS": 5000, "TCP_RTO_INIT_MS": 1000}, "TCP_RTO")
    refused({"TCP_DELACK_MS": 501}, "TCP_DELACK_MS")  # RFC 1122 4.2.3.2: under 0.5 s


def stack():
    return Stack({"PBUF_COUNT": 8})


def test_an_mtu_under_68_is_refused():
    # RFC 791: every internet module must be able to forward a 68-byte datagram unfragmented
    # (fragmenting into a smaller MTU never ends: no room for 8 bytes of payload)
    st = stack()
    for bad in (0, 20, 67):
        with pytest.raises(ValueError) as e:
            st.add_interface("e0", FeedDriver(), ip="192.0.2.2", mtu=bad)
        assert "mtu" in str(e.value)
    assert st.ifaces == []
    st.add_interface("e0", FeedDriver(), ip="192.0.2.2", mtu=68)


def test_an_mtu_bigger_than_a_packet_buffer_or_not_an_int_is_refused():
    st = stack()
    for bad in (1536, 9000, "1500", 1500.0, True):
        with pytest.raises(ValueError) as e:
            st.add_interface("e0", FeedDriver(), ip="192.0.2.2", mtu=bad)
        assert "mtu" in str(e.value)
    assert st.ifaces == []


def test_a_driver_mtu_larger_than_a_buffer_is_clamped_to_what_fits():
    d = FeedDriver()
    d.mtu = 9000
    st = stack()
    i = st.add_interface("e0", d, ip="192.0.2.2")
    assert i.mtu == st.config["PBUF_SIZE"] - 14


def test_add_interface_arguments_are_checked_and_nothing_is_added():
    st = stack()
    bad = (
        ({"name": ""}, "name"),
        ({"name": 3}, "name"),
        ({"ip": "192.0.2"}, "ip"),
        ({"ip": "192.0.2.300"}, "ip"),
        ({"ip": 3232235522}, "ip"),
        ({"prefix": 33}, "prefix"),
        ({"prefix": -1}, "prefix"),
        ({"prefix": "24"}, "prefix"),
        ({"gateway": "192.0.2.x"}, "gateway"),
        ({"mac": "02:00:00:00:00"}, "mac"),
        ({"mac": b"\x02\x00"}, "mac"),
        ({"mac": "zz:00:00:00:00:01"}, "mac"),
        ({"driver": None}, "driver"),
    )
    for kw, word in bad:
        args = {"name": "e0", "driver": FeedDriver(), "ip": "192.0.2.2", "prefix": 24}
        args.update(kw)
        with pytest.raises(ValueError) as e:
            st.add_interface(**args)
        assert word in str(e.value), (kw, str(e.value))
    assert st.ifaces == [] and st.routes.count == 0
    st.add_interface("e0", FeedDriver(), ip="192.0.2.2", prefix=24)
    with pytest.raises(ValueError) as e:
        st.add_interface("e0", FeedDriver(), ip="198.51.100.2", prefix=24)
    assert "e0" in str(e.value)  # names are unique


def test_set_address_and_add_route_arguments_are_checked():
    st = stack()
    i = st.add_interface("e0", FeedDriver(), ip="192.0.2.2", prefix=24)
    for args, word in ((("192.0.2.999", 24), "ip"), (("192.0.2.3", 40), "prefix"),
                       (("192.0.2.3", 24, "nope"), "gateway")):
        with pytest.raises(ValueError) as e:
            st.set_address(i, *args)
        assert word in str(e.value)
    assert i.ip == bytes([192, 0, 2, 2])  # unchanged
    for args, kw, word in ((("198.51.100.0", 33), {"iface": "e0"}, "prefix"),
                           (("198.51.100.x", 24), {"iface": "e0"}, "net"),
                           (("198.51.100.0", 24), {"gateway": "192.0.2.1", "metric": -1},
                            "metric"),
                           (("198.51.100.0", 24), {"gateway": "192.0.2.1.5"}, "gateway"),
                           (("198.51.100.0", 24), {"iface": "e9"}, "e9")):
        with pytest.raises(ValueError) as e:
            st.add_route(*args, **kw)
        assert word in str(e.value), str(e.value)
    st.add_route("198.51.100.0", 24, gateway="192.0.2.1")
