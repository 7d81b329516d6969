"""The IPv6 building blocks' per-packet paths under micropython.heap_lock(): N rounds of the
extension-header walk (plain, Hop-by-Hop + Destination Options, a fragment, an unknown
option that earns a Parameter Problem), the ICMPv6 error rule, an ICMPv6 error built into a
reused buffer, an echo reply turned around in place, ND validation and option lookup, the
pseudo-header checksum, address compares and derivations, RFC 6724 source selection, and
the neighbour cache's steady state (resolve, advert, confirm, tick). Any allocation raises MemoryError. Prints one JSON line.

    micropython ipv6_heaplock.py LIB [N]
"""
import sys
sys.path.insert(0, sys.argv[1])
import json
import micropython
from ustack.core import addr6
from ustack.core.nd import NeighbourCache, NA_SOLICITED
from ustack.core.checksum import csum
from ustack.core.wire import icmp6
from ustack.core.wire import ipv6 as ip6

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
A1 = addr6.pton("2001:db8::1")
A2 = addr6.pton("2001:db8::2")
LL1 = addr6.pton("fe80::ff:fe00:1")
MAC = b"\x02\x00\x00\x00\x00\x02"


def packet(nh, ext, upper, dst=A2, src=A1, hlim=64):
    b = bytearray(40 + len(ext) + len(upper))
    ip6.write_header(b, 0, 0, 0, len(ext) + len(upper), nh, hlim, src, dst)
    b[40:40 + len(ext)] = ext
    b[40 + len(ext):] = upper
    return b


UDP8 = b"\x00\x35\x00\x35\x00\x08\x00\x00"
plain = packet(ip6.NH_UDP, b"", UDP8)
chain = packet(ip6.NH_HOPOPTS, bytes([60, 0, 5, 2, 0, 0, 1, 0, 17, 0, 1, 4, 0, 0, 0, 0]), UDP8)
frag = packet(ip6.NH_FRAGMENT, bytes([17, 0, 0, 1, 0, 0, 0, 7]), UDP8 + bytes(8))
unknown = packet(ip6.NH_DSTOPTS, bytes([17, 0, 0x9E, 2, 0, 0, 1, 0]), UDP8)
ns = bytearray(72)
ip6.write_header(ns, 0, 0, 0, 32, ip6.NH_ICMPV6, 255, LL1, addr6.pton("ff02::1:ff00:2"))
icmp6.write_ns(ns, 40, addr6.pton("fe80::ff:fe00:2"), MAC)
icmp6.fill_checksum(ns, 0, 40, 32)
out = bytearray(1280)
echo = packet(ip6.NH_ICMPV6, b"", b"\x80\x00\x00\x00\x12\x34\x00\x01pingdata")
scratch = bytearray(16)
mac = bytearray(6)
res = ip6.new_result()
cands = [addr6.pton("fe80::1"), addr6.pton("2001:db8::5"), addr6.pton("2001:db8:1::5")]
flags = [0, addr6.ADDR_DEPRECATED, 0]   # rule 3 picks 2001:db8:1::5 over the longer match
ifaces = [0, 0, 0]
plens = [64, 64, 64]


class Owner:
    def __init__(self):
        self.n = 0

    def nd_solicit(self, cache, i, unicast):
        self.n += 1

    def nd_transmit(self, cache, i, pkt):
        self.n += 1

    def nd_unreachable(self, cache, i, pkt):
        self.n += 1

    def nd_discard(self, cache, pkt):
        self.n += 1


owner = Owner()
cache = NeighbourCache(owner, 16, 6, {"ND_CACHE_SIZE": 8})
cache.resolve(A2, 0, None, 0)
cache.advert(A2, 0, MAC, 0, NA_SOLICITED, 0)

STEP = ["start"]


def rounds(n):
    ok = 0
    now = 1
    k = 0
    while k < n:
        STEP[0] = "walk"
        if ip6.walk(plain, 0, len(plain), False, res) is None and res[ip6.R_OFF] == 40:
            ok += 1
        if ip6.walk(chain, 0, len(chain), False, res) is None and res[ip6.R_OFF] == 56:
            ok += 1
        if ip6.walk(frag, 0, len(frag), False, res) is None and res[ip6.R_FRAG] == 40:
            ok += 1
        why = ip6.walk(unknown, 0, len(unknown), False, res)
        STEP[0] = "error rule"
        if why is not None and icmp6.may_send_error(
                icmp6.PARAM_PROBLEM, res[ip6.R_PP_CODE], res[ip6.R_PP_PTR], unknown, 0, -1, -1,
                False):
            STEP[0] = "error build"
            m = icmp6.build_error(out, 0, icmp6.PARAM_PROBLEM, res[ip6.R_PP_CODE],
                                  res[ip6.R_PP_PTR], A2, A1, unknown, 0, len(unknown), 64)
            if icmp6.checksum_ok(out, 0, 40, m - 40):
                ok += 1
        STEP[0] = "echo"
        echo[40] = icmp6.ECHO_REQUEST
        icmp6.fill_checksum(echo, 0, 40, len(echo) - 40)
        icmp6.echo_reply_in_place(echo, 0, 40, None, 0, 64)
        if icmp6.checksum_ok(echo, 0, 40, len(echo) - 40) and echo[40] == icmp6.ECHO_REPLY:
            ok += 1
        STEP[0] = "nd"
        if icmp6.nd_check(ns, 0, 40, 32) is None and \
                icmp6.find_option(ns, 64, 72, icmp6.OPT_SLLA) == 64:
            ok += 1
        STEP[0] = "checksum"
        if csum(ns, 40, 32, ip6.pseudo_sum(ns, 0, ip6.NH_ICMPV6, 32)) == 0xFFFF:
            ok += 1
        STEP[0] = "addresses"
        if addr6.eq16(plain, ip6.DST, A2, 0) and addr6.common_prefix_len(A1, 0, A2, 0) == 126:
            ok += 1
        addr6.solicited_node(plain, ip6.DST, scratch, 0)
        addr6.mcast_mac(scratch, 0, mac, 0)
        STEP[0] = "source selection"
        if addr6.select_source(plain, ip6.DST, cands, flags, ifaces, plens, 3, 0) == 2:
            ok += 1
        STEP[0] = "neighbour cache"
        if cache.resolve(A2, 0, None, now) >= 0:
            ok += 1
        cache.advert(A2, 0, MAC, 0, NA_SOLICITED, now)
        cache.confirm(A2, 0, now)
        cache.tick(now)
        now += 1
        k += 1
    return ok


result = {"rounds": 0, "failure": None, "step": None, "ok": 0, "per_round": 10}
got = rounds(2)   # warm-up (and `got` exists before the lock: a new global allocates)
micropython.heap_lock()
try:
    got = rounds(N)
    micropython.heap_unlock()
    result["rounds"] = N
    result["ok"] = got
except MemoryError:
    micropython.heap_unlock()
    result["failure"] = "MemoryError"
    result["step"] = STEP[0]
# the negative control: the same lock does catch an allocation
micropython.heap_lock()
try:
    bytearray(8)
    micropython.heap_unlock()
    result["control_caught"] = False
except MemoryError:
    micropython.heap_unlock()
    result["control_caught"] = True
print(json.dumps(result))
