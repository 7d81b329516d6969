"""The control channel ("our netlink"): a small versioned request/response protocol with the
stack as the server, the same on every runtime. A port carries it (a UNIX socket on CPython,
the UDP control port on a board); this module knows no transport.

One message is one line of JSON (UTF-8, no newline inside, at most MAX_LINE bytes):

    request   {"v": 1, "op": "route.add", "dst": "198.51.100.0/24", "via": "192.0.2.1"}
    response  {"v": 1, "ok": true, "data": ...}   or   {"v": 1, "ok": false, "error": "..."}

A request with another major version, no "op" or an unknown one is answered with an error
naming it (never dropped silently), so a newer client learns what an older stack speaks. The
"hello" op lists every op. Requests are rare and small: they may allocate (never on the packet
path). Handlers run in the thread/task that drives the stack (the port's lock held).

Ops: hello; addr, addr.add, addr.del, addr.set; route, route.add, route.del; neigh,
neigh.add, neigh.del, neigh.flush; ss; stats; config, config.set (only RUNTIME_KEYS: values
the stack reads again at run time); filter, filter.add, filter.del, filter.zero, filter.policy,
filter.flush, filter.set, filter.ct (core/filter.py, when the build has it).
"""
import json

from ustack.core import config as cf
from ustack.core.wire import ipv4 as ip4
from ustack.core.wire import ethernet as eth

VERSION = 1
MAX_LINE = 4096  # bytes in one request line; a longer one is refused, counted (too_long)

CTL_COUNTERS = ("requests", "rx_malformed", "rx_too_long", "rx_bad_version", "rx_unknown_op",
                "failed")

INF_SSTHRESH = 0x3FFFFFFF  # cc_newreno.INF: no ssthresh yet (RFC 5681 3.1), shown as none

ARP_STATE_NAMES = ("FREE", "INCOMPLETE", "REACHABLE", "STALE", "PERMANENT")
PERMANENT = 4  # core/arp.py's state of a static entry (ARP_STATE_NAMES[4])

# Config keys a running stack takes: each names where the value lives after Stack() copied
# it (a protocol attribute), so setting it changes behaviour at once. Sizes of fixed tables
# and pools are not here: they are allocated at start.
RUNTIME_KEYS = {
    "IP_TTL": (("ipv4", "ttl"),),
    "IP_FORWARD": (("ipv4", "forward"),),
    "IP_FORWARD_DIRECTED_BCAST": (("ipv4", "forward_bcast"),),
    "RX_BATCH": (),
    "TCP_RTO_MIN_MS": (("tcp", "rto_min"),),
    "TCP_RTO_MAX_MS": (("tcp", "rto_max"),),
    "TCP_DELACK_MS": (("tcp", "delack"),),
    "TCP_ACK_BURST": (("tcp", "ack_burst"),),
    "TCP_MAX_RETRIES": (("tcp", "max_retries"),),
    "TCP_SYN_RETRIES": (("tcp", "syn_retries"),),
    "TCP_SYNACK_RETRIES": (("tcp", "synack_retries"),),
    "TCP_SYNCOOKIES": (("tcp", "syncookies"),),
    "TCP_SYNCOOKIE_BUDGET": (("tcp", "cookie_budget"),),
    "TCP_FIN_TIMEOUT_MS": (("tcp", "fin_timeout"),),
    "TCP_KEEPIDLE_MS": (("tcp", "keep_idle"),),
    "TCP_KEEPINTVL_MS": (("tcp", "keep_intvl"),),
    "TCP_KEEPCNT": (("tcp", "keep_cnt"),),
    "TCP_CC": (("tcp", "cc_name"),),  # new connections; an open one keeps its controller
    "TCP_CC_NONE_SEGMENTS": (),        # read from the config when a "none" one is made
    "ARP_MAX_AGE_MS": (("arp", "max_age"),),
    "ARP_RETRY_MS": (("arp", "retry_ms"),),
    "ARP_MAX_RETRIES": (("arp", "max_retries"),),
}


class CtlError(Exception):
    """A request the stack refuses; its message goes back as the response's error."""


def encode(obj):
    return (json.dumps(obj) + "\n").encode()


def request(op, **args):
    """The line a client sends."""
    args["v"] = VERSION
    args["op"] = op
    return encode(args)


def decode_response(line):
    """A response line -> its data; CtlError with the stack's message when it refused."""
    try:
        r = json.loads(line)
    except ValueError:
        raise CtlError("malformed response from the stack: %r" % (line[:80],))
    if not isinstance(r, dict) or r.get("v") != VERSION:
        raise CtlError("the stack speaks control protocol version %r, this client %d"
                       % (r.get("v") if isinstance(r, dict) else None, VERSION))
    if not r.get("ok"):
        raise CtlError(r.get("error") or "refused")
    return r.get("data")


def all_counters(st):
    """Every counter of the stack, zeros included (a stable key set for deltas)."""
    out = {}
    for pre, c in st.counter_groups():
        for k, v in c.items():
            out[pre + "." + k] = v
    pool = st.pool
    out["pbuf.free"] = pool.nfree
    out["pbuf.count"] = pool.count
    out["pbuf.low_water"] = pool.low_water
    out["pbuf.queued"] = pool.queued
    out["pbuf.alloc_fail"] = pool.alloc_fail
    out["pbuf.rx_reserve_hit"] = pool.rx_reserve_hit
    out["pbuf.queue_cap_hit"] = pool.queue_cap_hit
    return out


# Gauges (a level, not an event count): a delta of them means nothing, the value is shown
GAUGES = ("pbuf.free", "pbuf.count", "pbuf.low_water", "pbuf.queued")


def deltas(prev, cur):
    """cur - prev for every event counter of cur (a key new in cur counts from 0)."""
    out = {}
    for k in cur:
        if k in GAUGES:
            continue
        out[k] = cur[k] - prev.get(k, 0)
    return out


def _arg(req, key, kind=str, need=True):
    v = req.get(key)
    if v is None:
        if need:
            raise CtlError("%s: missing %r" % (req.get("op"), key))
        return None
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise CtlError("%s: %r must be a %s, got %r" % (req.get("op"), key, kind.__name__, v))
    return v


def _cidr(req, key, default_prefix=None, network=False):
    """ADDRESS/PREFIX from req[key]; a network (network=True: a route's destination) must
    have no host bits set, as `ip route` insists ("Invalid prefix for given prefix length")."""
    v = _arg(req, key)
    if v == "default":
        return ip4.ANY, 0
    if "/" not in v and default_prefix is not None:
        v = v + "/" + str(default_prefix)
    try:
        a, p = ip4.parse_cidr(v)
    except ValueError:
        raise CtlError("%s: %s %r is not an address/prefix like 192.0.2.0/24"
                       % (req.get("op"), key, v))
    if network:
        mask = ip4.prefix_mask(p)
        for k in range(4):
            if a[k] & ~mask[k] & 0xFF:
                raise CtlError("%s: %s %s has host bits set (Invalid prefix for given prefix "
                               "length): the network is %s/%d" % (
                                   req.get("op"), key, v,
                                   ip4.ntoa(bytes(a[j] & mask[j] for j in range(4))), p))
    return a, p


def _addr(req, key, need=True):
    v = _arg(req, key, str, need)
    if v is None:
        return None
    try:
        return ip4.aton(v)
    except ValueError:
        raise CtlError("%s: %s %r is not an IPv4 address" % (req.get("op"), key, v))


def _mac(b):
    return eth.mac_str(b) if len(b) == 6 else ""


class Server:
    """The stack's side: handle(request dict) -> response dict; handle_line(bytes) -> bytes.
    `extra` maps op names to port handlers fn(req) -> data (e.g. capture)."""

    def __init__(self, stack, name="", info=None):
        from ustack.core.stats import Counters
        self.stack = stack
        self.name = name
        self.info = info or {}  # port facts shown by hello (runtime, pid, driver ...)
        self.extra = {}
        self.stats = Counters(CTL_COUNTERS)
        self.ops = {
            "hello": self.op_hello, "addr": self.op_addr, "addr.set": self.op_addr_set,
            "addr.add": self.op_addr_add, "addr.del": self.op_addr_del, "route": self.op_route,
            "route.add": self.op_route_add, "route.del": self.op_route_del, "neigh": self.op_neigh,
            "neigh.add": self.op_neigh_add, "neigh.del": self.op_neigh_del,
            "neigh.flush": self.op_neigh_flush, "ss": self.op_ss,
            "stats": self.op_stats, "config": self.op_config, "config.set": self.op_config_set,
            "filter": self.op_filter, "filter.add": self.op_filter_add,
            "filter.del": self.op_filter_del, "filter.zero": self.op_filter_zero,
            "filter.policy": self.op_filter_policy, "filter.flush": self.op_filter_flush,
            "filter.set": self.op_filter_set, "filter.ct": self.op_filter_ct,
            "ip6": self.op_ip6, "route6": self.op_route6,
        }

    # ---- framing --------------------------------------------------------------------------
    def handle_line(self, line):
        if len(line) > MAX_LINE:
            self.stats.rx_too_long += 1
            return encode({"v": VERSION, "ok": False,
                           "error": "request longer than %d bytes" % MAX_LINE})
        try:
            req = json.loads(line)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            self.stats.rx_malformed += 1
            return encode({"v": VERSION, "ok": False, "error": "request is not a JSON object"})
        return encode(self.handle(req))

    def handle(self, req):
        self.stats.requests += 1
        v = req.get("v")
        if v != VERSION:
            self.stats.rx_bad_version += 1
            return {"v": VERSION, "ok": False,
                    "error": "control protocol version %r not spoken (this stack: %d)"
                             % (v, VERSION)}
        op = req.get("op")
        fn = self.extra.get(op) or self.ops.get(op)
        if fn is None:
            self.stats.rx_unknown_op += 1
            return {"v": VERSION, "ok": False, "error": "unknown op %r" % (op,)}
        try:
            return {"v": VERSION, "ok": True, "data": fn(req)}
        except (CtlError, ValueError, OSError, KeyError) as e:
            self.stats.failed += 1
            return {"v": VERSION, "ok": False, "error": _msg(e)}

    # ---- ops ------------------------------------------------------------------------------
    def op_hello(self, req):
        ops = sorted(list(self.ops) + list(self.extra))
        d = {"version": VERSION, "name": self.name, "ops": ops}
        d.update(self.info)
        return d

    def _iface(self, req, need=True):
        name = _arg(req, "dev", str, need)
        if name is None:
            return None
        for i in self.stack.ifaces:
            if i.name == name:
                return i
        raise CtlError("%s: no interface named %r" % (req.get("op"), name))

    def op_addr(self, req):
        v6 = self.stack.ipv6
        out = []
        for i in self.stack.ifaces:
            d = {"dev": i.name, "up": bool(i.up), "mtu": i.mtu, "mac": _mac(i.mac),
                 "ip": ip4.ntoa(i.ip), "prefix": i.prefix,
                 "broadcast": ip4.ntoa(i.bcast),
                 "gateway": ip4.ntoa(i.gateway) if i.gateway else None,
                 "vlan": i.vlan}
            if v6 is not None:
                # (address, prefix, "tentative"/"duplicate"/""), as `ip addr`'s inet6 lines
                d["ip6"] = [list(a) for a in v6.addresses(i)]
            out.append(d)
        return out

    def _addr6(self, req):
        """An IPv6 ADDR/PREFIX of addr.add / addr.del: (16 bytes, prefix length)."""
        if self.stack.ipv6 is None:
            raise CtlError("%s: IPv6 is off (config IPV6)" % req.get("op"))
        from ustack.core import addr6
        v = _arg(req, "ip")
        try:
            a, p = addr6.parse_cidr(v)
        except (ValueError, OSError):
            raise CtlError("%s: ip %r is not an address/prefix like 2001:db8::2/64"
                           % (req.get("op"), v))
        if addr6.is_multicast(a, 0) or addr6.is_unspecified(a, 0):
            raise CtlError("%s: %s is no unicast address" % (req.get("op"), v))
        return a, p

    def _addr6_add(self, req, i):
        """An IPv6 address joins the interface (DAD first, RFC 4862 5.4), beside the others."""
        a, p = self._addr6(req)
        v6 = self.stack.ipv6
        if v6.find(a, 0) >= 0:
            raise CtlError("addr.add: %s is on %s already" % (_arg(req, "ip"),
                                                              v6.ifaces[v6.find(a, 0)].name))
        try:
            self.stack.ipv6.add_address(i, a, p)
        except OSError:
            raise CtlError("addr.add: the IPv6 address table is full (config IPV6_ADDRS)")
        return self.op_addr({})

    def _addr6_del(self, req, i):
        """An IPv6 address leaves: it is no longer answered for, its solicited-node group is
        left unless another address shares it (core/ipv6.py remove_address)."""
        a, p = self._addr6(req)
        v6 = self.stack.ipv6
        k = v6.find(a, 0)
        if k < 0 or v6.ifaces[k] is not i or v6.plens[k] != p:
            raise CtlError("addr.del: %s is not on %s" % (_arg(req, "ip"), i.name))
        v6.remove_address(a, 0)
        return self.op_addr({})

    def op_ip6(self, req):
        """IPv6's state, read only: addresses (with tentative/duplicate/deprecated), the
        routing table, and per interface the IPv6 MTU, the neighbour cache, the default
        routers and prefixes learned from Router Advertisements."""
        v6 = self.stack.ipv6
        if v6 is None:
            raise CtlError("ip6: IPv6 is off (config IPV6)")
        from ustack.core import addr6
        from ustack.core.nd import STATE_NAMES
        addrs = []
        for k in range(v6.count):
            f = v6.flags[k]
            addrs.append({"addr": addr6.ntop(v6.addrs[k]), "prefix": v6.plens[k],
                          "dev": v6.ifaces[k].name, "tentative": bool(f & addr6.ADDR_TENTATIVE),
                          "duplicate": bool(f & addr6.ADDR_DUPLICATE),
                          "deprecated": bool(f & addr6.ADDR_DEPRECATED)})
        rt = self.stack.routes6
        routes = []
        for k in range(rt.count):
            routes.append({"dst": addr6.ntop(rt.net[k]), "prefix": rt.prefix[k],
                           "via": addr6.ntop(rt.gw[k]) if rt.gw[k] else None,
                           "dev": rt.iface[k].name if rt.iface[k] else None})
        links = []
        for i in self.stack.ifaces:
            nd = i.nd
            if nd is None:
                continue
            sl = i.slaac
            neigh = []
            for k in range(nd.size):
                if nd.state[k]:
                    neigh.append({"addr": addr6.ntop(nd.addr[k]), "lladdr": _mac(nd.ll[k]),
                                  "state": STATE_NAMES[nd.state[k]], "router": nd.router[k]})
            links.append({
                "dev": i.name, "mtu6": i.mtu6, "neigh": neigh,
                "routers": [addr6.ntop(sl.router[k]) for k in range(sl.nrouter)
                            if sl.router_used[k]],
                "prefixes": ["%s/%d" % (addr6.ntop(sl.prefix[k]), sl.plen[k])
                             for k in range(sl.nprefix) if sl.used[k]],
                "groups": [addr6.ntop(i.mld.group[k]) for k in range(i.mld.size)
                           if i.mld.state[k]]})
        return {"addrs": addrs, "routes": routes, "links": links,
                "hop_limit": v6.hop_limit}

    def _not_leased(self, req, i):
        """An address DHCP manages is not changed by hand (the next lease would undo it)."""
        d = self.stack.dhcp
        if d is not None and d.iface is i:
            raise CtlError("%s: %s's address is leased by DHCP" % (req.get("op"), i.name))

    def op_addr_add(self, req):
        """Give an interface without an address one (an interface holds one IPv4 address:
        replacing it is addr.set, as `ip addr replace`)."""
        i = self._iface(req)
        if ":" in _arg(req, "ip"):
            return self._addr6_add(req, i)
        a, p = _cidr(req, "ip")
        self._not_leased(req, i)
        if i.ip != ip4.ANY:
            have = "%s/%d" % (ip4.ntoa(i.ip), i.prefix)
            if i.ip == a and i.prefix == p:
                raise CtlError("addr.add: %s is on %s already" % (have, i.name))
            raise CtlError("addr.add: %s has %s already (one address per interface: replace "
                           "it, or del it first)" % (i.name, have))
        gw = _addr(req, "gateway", False)
        self.stack.set_address(i, a, p, gw)
        return self.op_addr({})

    def op_addr_del(self, req):
        """Take the address off the interface: its routes go, and sockets bound to it learn
        (EADDRNOTAVAIL), as when Linux deletes an address under them."""
        i = self._iface(req)
        if ":" in _arg(req, "ip"):
            return self._addr6_del(req, i)
        a, p = _cidr(req, "ip", i.prefix)
        self._not_leased(req, i)
        if i.ip == ip4.ANY or i.ip != a or i.prefix != p:
            raise CtlError("addr.del: %s/%d is not on %s (it has %s)" % (
                ip4.ntoa(a), p, i.name,
                "%s/%d" % (ip4.ntoa(i.ip), i.prefix) if i.ip != ip4.ANY else "none"))
        self.stack.remove_address(i)
        return self.op_addr({})

    def op_addr_set(self, req):
        """Replace the interface's address (its connected and default routes follow)."""
        i = self._iface(req)
        self._not_leased(req, i)
        a, p = _cidr(req, "ip")
        gw = _addr(req, "gateway", False)
        if gw is None and i.gateway and _arg(req, "keep_gateway", bool, False) is not False:
            gw = i.gateway
        self.stack.set_address(i, a, p, gw)
        return self.op_addr({})

    def _routes6(self):
        """IPv6's table (family 6), as op_route's rows; proto ra: a Router Advertisement's,
        whose RFC 4191 preference is the metric (high 0, medium 1, low 2)."""
        rt = self.stack.routes6
        if rt is None:
            raise CtlError("route: IPv6 is off (config IPV6)")
        from ustack.core import addr6
        return [{"dst": addr6.ntop(rt.net[k]), "prefix": rt.prefix[k],
                 "via": addr6.ntop(rt.gw[k]) if rt.gw[k] else None,
                 "dev": rt.iface[k].name if rt.iface[k] else None,
                 "metric": rt.metric[k], "proto": rt.source[k], "src": None}
                for k in range(rt.count)]

    def _route6_change(self, req, add):
        """route.add / route.del of an IPv6 destination (its text has a colon): a gateway
        that is link-local needs dev (RFC 4007: its zone); a connected route is not
        replaced."""
        from ustack.core import addr6
        rt = self.stack.routes6
        if rt is None:
            raise CtlError("%s: IPv6 is off (config IPV6)" % req.get("op"))
        v = _arg(req, "dst")
        try:
            net, p = addr6.parse_cidr(v if "/" in v else v + "/128")
        except (ValueError, OSError):
            raise CtlError("%s: dst %r is not an IPv6 prefix like 2001:db8::/48"
                           % (req.get("op"), v))
        masked = bytearray(net)
        for k in range(16):
            bits = p - 8 * k
            masked[k] &= 0xFF if bits >= 8 else (0 if bits <= 0 else (0xFF << (8 - bits)) & 0xFF)
        if bytes(masked) != bytes(net):
            raise CtlError("%s: dst %s has host bits set (Invalid prefix for given prefix "
                           "length): the network is %s/%d"
                           % (req.get("op"), v, addr6.ntop(masked), p))
        r = rt.find(net, p)
        if not add:
            if not rt.remove(net, p, self._iface(req, False)):
                raise CtlError("route.del: no route to %s/%d" % (addr6.ntop(net), p))
            return self._routes6()
        if r >= 0 and rt.source[r] == "connected":
            raise CtlError("route.add: %s/%d is %s's connected route"
                           % (addr6.ntop(net), p, rt.iface[r].name))
        i = self._iface(req, False)
        gw = _arg(req, "via", str, False)
        metric = _arg(req, "metric", int, False) or 0
        if gw is not None:
            try:
                gw = addr6.pton(gw)
            except (ValueError, OSError):
                raise CtlError("route.add: via %r is not an IPv6 address" % (gw,))
            if addr6.is_link_local(gw, 0):
                if i is None:
                    raise CtlError("route.add: via %s is link-local: name the interface "
                                   "('dev')" % addr6.ntop(gw))
            else:
                g = rt.lookup(gw, 0)
                if g < 0 or rt.gw[g] is not None:
                    raise CtlError("route.add: gateway %s is not on a connected network"
                                   % addr6.ntop(gw))
                if i is None:
                    i = rt.iface[g]
        if i is None:
            raise CtlError("route.add: a route needs 'via' (a gateway) or 'dev'")
        if r < 0 and rt.count >= rt.size:
            raise CtlError("route.add: the IPv6 routing table is full (config ROUTE_ENTRIES)")
        rt.add(net, p, gw, i, metric)
        return self._routes6()

    def op_route(self, req):
        if req.get("family") == 6:
            return self._routes6()
        rt = self.stack.routes
        out = []
        for k in range(rt.count):
            out.append({"dst": ip4.ntoa(rt.net[k]), "prefix": rt.prefix[k],
                        "via": ip4.ntoa(rt.gw[k]) if rt.gw[k] else None,
                        "dev": rt.iface[k].name if rt.iface[k] else None,
                        "metric": rt.metric[k], "proto": rt.source[k],
                        "src": ip4.ntoa(rt.iface[k].ip) if rt.iface[k] else None})
        return out

    def op_route6(self, req):
        """IPv6's routing table: `route` with family 6 (the op RIPng's tests first used)."""
        return self._routes6()

    def op_route_add(self, req):
        if ":" in str(req.get("dst")):
            return self._route6_change(req, True)
        net, p = _cidr(req, "dst", 32, True)
        gw = _addr(req, "via", False)
        i = self._iface(req, False)
        metric = _arg(req, "metric", int, False) or 0
        if gw is None and i is None:
            raise CtlError("route.add: a route needs 'via' (a gateway) or 'dev'")
        mask = ip4.prefix_mask(p)
        for x in self.stack.ifaces:
            # adding a route replaces one to the same prefix: never the connected route,
            # which makes the interface's neighbours (its gateways) reachable at all
            if x.ip != ip4.ANY and x.prefix == p and \
                    all((x.ip[k] ^ net[k]) & mask[k] == 0 for k in range(4)):
                raise CtlError("route.add: %s/%d is %s's connected route (it follows the "
                               "address: addr replace)" % (ip4.ntoa(net), p, x.name))
        if gw is not None:
            r = self.stack.routes.lookup(gw, 0)
            if r < 0 or self.stack.routes.gw[r] is not None:
                raise CtlError("route.add: gateway %s is not on a connected network"
                               % ip4.ntoa(gw))
        self.stack.add_route(net, p, gw, i, metric)
        return self.op_route({})

    def op_route_del(self, req):
        if ":" in str(req.get("dst")):
            return self._route6_change(req, False)
        net, p = _cidr(req, "dst", 32, True)
        if not self.stack.routes.remove(net, p):
            raise CtlError("route.del: no route to %s/%d" % (ip4.ntoa(net), p))
        return self.op_route({})

    def op_neigh(self, req):
        out = []
        for i in self.stack.ifaces:
            a = i.arp
            if a is None:
                continue
            for k in range(a.size):
                s = a.state[k]
                if s:
                    out.append({"ip": ip4.ntoa(a.ip[k]), "dev": i.name,
                                "lladdr": _mac(a.mac[k]) if s >= 2 else None,
                                "state": ARP_STATE_NAMES[s], "queued": a.queued[k]})
        return out

    def _arp(self, req):
        i = self._iface(req, False)
        if i is None:
            ifs = [x for x in self.stack.ifaces if x.arp is not None]
            if len(ifs) != 1:
                raise CtlError("%s: name the interface ('dev')" % req.get("op"))
            i = ifs[0]
        if i.arp is None:
            raise CtlError("%s: %s has no neighbour table" % (req.get("op"), i.name))
        return i.arp

    def op_neigh_add(self, req):
        a = self._arp(req)
        ip = _addr(req, "ip")
        try:
            mac = eth.parse_mac(_arg(req, "lladdr"))
        except ValueError:
            raise CtlError("neigh.add: lladdr %r is not a MAC like 02:00:00:00:00:01"
                           % req.get("lladdr"))
        if mac[0] & 1 or mac == b"\x00" * 6:
            raise CtlError("neigh.add: lladdr %s is not a unicast MAC" % eth.mac_str(mac))
        a.add_static(ip, mac)
        return self.op_neigh({})

    def op_neigh_del(self, req):
        a = self._arp(req)
        ip = _addr(req, "ip")
        k = a.find(ip, 0)
        if k < 0:
            raise CtlError("neigh.del: no neighbour %s" % ip4.ntoa(ip))
        a._clear(k)
        return self.op_neigh({})

    def op_neigh_flush(self, req):
        """Forget the learned neighbours (of 'dev', else of every interface), as `ip neigh
        flush`; static (PERMANENT) entries too only with "permanent": true. Packets waiting
        on an entry are dropped (counted as pending_dropped)."""
        i = self._iface(req, False)
        perm = _arg(req, "permanent", bool, False)
        n = 0
        for x in self.stack.ifaces:
            a = x.arp
            if a is None or (i is not None and x is not i):
                continue
            for k in range(a.size):
                s = a.state[k]
                if s and (s != PERMANENT or perm):
                    a._clear(k)
                    n += 1
        return {"flushed": n, "neigh": self.op_neigh({})}

    def op_ss(self, req):
        """Every socket: proto, state, local, peer, recv_q, send_q; TCP connections add the
        TCB's cwnd, ssthresh, srtt/rttvar/rto (ms), mss and retransmissions. Connections
        without a socket (orphans closing, TIME_WAIT) are listed too, as ss does."""
        st = self.stack
        out = []
        seen = []
        for s in st.sockets:
            if s.type == 1:
                tcb = getattr(s, "tcb", None)
                if tcb is not None:
                    seen.append(tcb)
                    out.append(_tcb_row(tcb, st.tcp))
                    continue
                d = _row("tcp", s.state(), s)
                if s.listening:
                    d["recv_q"] = len(s.acc_q)
                    d["send_q"] = s.backlog
                out.append(d)
            elif s.type == 2:
                d = _row("udp", "UNCONN" if not s.connected else "ESTAB", s)
                d["recv_q"] = _chain_bytes(s.qhead, st.pool.count)
                d["datagrams"] = s.qlen
                out.append(d)
            else:
                d = _row("raw", "UNCONN", s)
                d["proto"] = s.proto
                d["recv_q"] = _chain_bytes(getattr(s, "qhead", None), st.pool.count)
                out.append(d)
        if st.tcp is not None:
            for tcb in st.tcp.conns:
                if tcb not in seen:
                    out.append(_tcb_row(tcb, st.tcp))
        return out

    def op_stats(self, req):
        c = all_counters(self.stack)
        for k, v in self.stats.items():
            c["ctl." + k] = v
        return c

    def op_config(self, req):
        return {"config": dict(self.stack.config), "runtime_keys": sorted(RUNTIME_KEYS)}

    def op_config_set(self, req):
        k = _arg(req, "key")
        v = req.get("value")
        if k not in cf.DEFAULTS:
            raise CtlError("config.set: unknown config key %r" % (k,))
        if k not in RUNTIME_KEYS:
            raise CtlError("config.set: %s is fixed at start (settable at run time: %s)"
                           % (k, ", ".join(sorted(RUNTIME_KEYS))))
        cf.check_key(k, v)
        st = self.stack
        if k == "TCP_CC":
            from ustack.core.tcp import cc
            if not cc.available(v):
                raise CtlError("config.set: TCP_CC %s is not in this build" % (v,))
        if k == "TCP_RTO_MIN_MS" and v > st.config["TCP_RTO_MAX_MS"] or \
                k == "TCP_RTO_MAX_MS" and v < st.config["TCP_RTO_MIN_MS"]:
            raise CtlError("config.set: TCP_RTO_MIN_MS must not exceed TCP_RTO_MAX_MS")
        for owner, attr in RUNTIME_KEYS[k]:
            if owner == "arp":
                for i in st.ifaces:
                    if i.arp is not None:
                        setattr(i.arp, attr, v)
                continue
            o = getattr(st, owner)
            if o is not None:
                setattr(o, attr, v)
        st.config[k] = v
        return {k: v}

    # ---- packet filter (core/filter.py) -------------------------------------------------
    def _filter(self, req):
        try:
            from ustack.core import filter as pf
        except ImportError:
            raise CtlError("%s: this build has no packet filter (feature filter)"
                           % req.get("op"))
        return pf, pf.get(self.stack)

    def op_filter(self, req):
        pf, f = self._filter(req)
        rs = f.rs
        rules = [{"n": i, "hook": pf.HOOK_NAMES[rs.hook[i]], "rule": rs.text[i],
                  "packets": rs.pkts[i], "bytes": rs.bytes[i]} for i in range(rs.n)]
        return {"rules": rules, "max_rules": f.cap,
                "policy": dict((pf.HOOK_NAMES[h], pf.ACTION_NAMES[rs.policy[h]])
                               for h in range(5)),
                "conntrack": {"used": f.ct.used, "size": f.ct.size},
                "counters": dict(f.stats.items())}

    def op_filter_add(self, req):
        pf, f = self._filter(req)
        text = _arg(req, "rule")
        pos = _arg(req, "pos", int, False)
        if pos is not None and not 0 <= pos <= f.rs.n:
            raise CtlError("filter.add: pos %d: 0..%d" % (pos, f.rs.n))
        if f.rs.n >= f.cap:
            raise CtlError("filter.add: the rule set is full (FILTER_RULES %d)" % f.cap)
        f.add(text, pos)
        return self.op_filter({})

    def op_filter_del(self, req):
        pf, f = self._filter(req)
        n = _arg(req, "n", int)
        if not 0 <= n < f.rs.n:
            raise CtlError("filter.del: no rule %d (rules are 0..%d)" % (n, f.rs.n - 1)
                           if f.rs.n else "filter.del: no rule %d (there are none)" % n)
        f.delete(n)
        return self.op_filter({})

    def op_filter_zero(self, req):
        pf, f = self._filter(req)
        f.zero()
        return self.op_filter({})

    def op_filter_flush(self, req):
        pf, f = self._filter(req)
        f.flush()
        return self.op_filter({})

    def op_filter_policy(self, req):
        pf, f = self._filter(req)
        h = _arg(req, "hook")
        a = _arg(req, "action")
        try:
            hook, act = pf.parse_policy("policy %s %s" % (h, a))
        except ValueError as e:
            raise CtlError("filter.policy: %s" % e)
        f.set_policy(hook, act)
        return self.op_filter({})

    def op_filter_set(self, req):
        """The whole rule set (rule and policy lines) replaced at once."""
        pf, f = self._filter(req)
        lines = req.get("rules")
        if not isinstance(lines, list) or [x for x in lines if not isinstance(x, str)]:
            raise CtlError("filter.set: 'rules' must be a list of rule lines")
        f.load(lines)
        return self.op_filter({})

    def op_filter_ct(self, req):
        pf, f = self._filter(req)
        return f.conntrack()


def _msg(e):
    if isinstance(e, OSError) and e.args and len(e.args) > 1:
        return "%s (errno %d)" % (e.args[1], e.args[0])
    m = str(e)
    return m[8:] if m.startswith("config: ") else m


def _ep(a, port):
    """An endpoint as ss prints it: 192.0.2.1:80, [2001:db8::1]:80."""
    if len(a) == 16:
        from ustack.core import addr6   # here: an IPv4-only board ships no addr6
        return "[%s]:%d" % (addr6.ntop(a), port)
    return "%s:%d" % (ip4.ntoa(a), port)


def _row(proto, state, s):
    return {"proto": proto, "state": state,
            "local": _ep(s.local_ip, s.local_port),
            "peer": _ep(s.remote_ip, s.remote_port)
            if s.remote_port else "*:*", "recv_q": 0, "send_q": 0}


def _chain_bytes(pb, limit):
    n = 0
    k = 0
    while pb is not None and k < limit:
        n += pb.n
        pb = pb.next
        k += 1
    return n


def _tcb_row(tcb, tcp=None):
    from ustack.core.tcp.tcb import ESTABLISHED, TIME_WAIT  # here: a build without TCP has no tcb
    from ustack.core.tcp.tcb import F_TS, F_SACK, F_ECN
    d = {"proto": "tcp", "state": tcb.state_name(),
         "local": _ep(tcb.local_ip, tcb.local_port),
         "peer": _ep(tcb.remote_ip, tcb.remote_port),
         "recv_q": tcb.rcv.count if tcb.rcv is not None else 0,
         "send_q": tcb.snd.count if tcb.snd is not None else 0,
         # closed by the application, still closing; waiting in a listener's accept queue
         "orphan": tcb.sock is None and tcb.listener is None and tcb.state >= ESTABLISHED and
         tcb.state != TIME_WAIT,
         "unaccepted": tcb.sock is None and tcb.listener is not None,
         "mss": tcb.mss, "rto": tcb.rto,
         # RFC 6298 2: SRTT and RTTVAR, kept scaled by 8 and 4 (Jacobson)
         "srtt": tcb.srtt8 / 8.0, "rttvar": tcb.rttvar4 / 4.0,
         "retrans": tcb.retries, "retrans_total": tcb.rexmits,
         "snd_wnd": tcb.snd_wnd, "rcv_wscale": tcb.rcv_wscale,
         "snd_wscale": tcb.snd_wscale,
         # what was agreed (ss -ti's ts, sack, ecn), RACK's reordering (ss's reordering and
         # reord_seen; RFC 8985 6.2 step 3) and its reordering window in ms
         "ts": bool(tcb.flags & F_TS), "sack": bool(tcb.flags & F_SACK),
         "ecn": bool(tcb.flags & F_ECN), "rack": False, "reordering": 3, "reord_seen": 0,
         "reo_wnd": 0}
    if tcp is not None:
        # ss -ti's pmtu: the path MTU the connection's segments are cut to (its family's
        # link MTU, or less as Path MTU Discovery learnt, RFC 1191 / RFC 8201)
        d["pmtu"] = tcp.stack.ip.path_mtu(tcb.remote_ip, 0, len(tcb.remote_ip),
                                          tcb.iface_mtu)
    sb = tcb.sb
    rk = sb.rack if sb is not None else None
    if rk is not None:
        d["rack"] = True
        d["reordering"] = rk.reordering
        d["reord_seen"] = rk.reord_seen
        d["reo_wnd"] = rk.reo_wnd
    elif tcp is not None and d["sack"] and tcp.rack_slots:
        d["rack"] = True  # RACK is on; its state comes with the first data sent
    cc = tcb.cc
    if cc is None and tcp is not None and tcb.state >= ESTABLISHED:
        # nothing sent yet, so no controller (cc.of makes it then): the one it will be
        from ustack.core.tcp import cc as ccmod
        cc = ccmod.fresh(tcp, tcb)
    if cc is not None:
        d["cc"] = cc.name  # the congestion controller (TCP_CC / TCP_CONGESTION), as ss -ti
        d["cwnd"] = cc.window()
        d["ssthresh"] = cc.ssthresh if cc.ssthresh < INF_SSTHRESH else None
    else:
        d["cc"] = None
        d["cwnd"] = 0
        d["ssthresh"] = None
    return d
