"""`ustack ping` refuses sizes the kernel's ping refuses, with one line naming the flag,
before it opens any link."""
import subprocess
import sys


def ping(*args):
    return subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "ping", "192.0.2.1",
                           "--tap", "ustk-none"] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_negative_size_is_one_line_naming_the_flag():
    r = ping("-s", "-5")
    assert r.returncode != 0
    assert r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "-s" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_size_above_the_largest_ipv4_icmp_payload_is_refused():
    r = ping("-s", "70000")
    assert r.returncode != 0
    assert "packets transmitted" not in r.stdout
    assert r.stderr.strip().count("\n") == 0 and "65507" in r.stderr, r.stderr


def test_zero_count_and_negative_interval_are_refused():
    for args, flag in ((("-c", "0"), "-c"), (("-i", "-1"), "-i")):
        r = ping(*args)
        assert r.returncode != 0
        assert r.stderr.strip().count("\n") == 0 and flag in r.stderr, r.stderr


def test_a_destination_that_is_not_an_address_is_one_line_naming_it():
    r = subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "ping", "foo",
                        "--tap", "ustk-none"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "foo" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def ping_to(dest, *args):
    return subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "ping", dest,
                           "--tap", "ustk-none"] + list(args),
                          capture_output=True, text=True, timeout=60)


def one_line(r, *words):
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_ipv6_destinations_and_the_family_flags_are_checked_in_one_line():
    one_line(ping_to("2001:db8::zz"), "2001:db8::zz", "IPv6")
    one_line(ping_to("::"), "not an IPv6 address")
    one_line(ping_to("2001:db8::1", "-4"), "-4", "IPv6 address")
    one_line(ping_to("192.0.2.1", "-6"), "-6", "IPv4 address")
    # no address at all: named as what the flag asked for, not as the other family's
    one_line(ping_to("zz", "-6"), "zz: not an IPv6 address")
    one_line(ping_to("zz::", "-4"), "zz::: not an IPv4 address")
    # RFC 8200: 65535 bytes of payload, 8 of them the ICMPv6 header
    one_line(ping_to("2001:db8::1", "-s", "65528"), "-s", "65527", "IPv6")
