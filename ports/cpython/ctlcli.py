"""The control subcommands of `ustack` (addr, route, neigh, ss, stats, capture, config,
filter): each talks to a running `ustack up` over the control channel (control.py,
core/ctl.py) and prints what `ip`, `ss`, `nstat` and `nft list` print, or JSON with --json.
Also `ustack up`'s side: its control flags, the SIGUSR1 status dump and the timestamped
`stats` line of --stats-interval.

Every mistake ends in one line naming the word or flag at fault, exit status 1 (2 for a
usage error argparse finds), before anything is sent to the stack.
"""
import argparse
import json
import os
import sys
import time

from ustack.core import ctl
from ustack.ports.cpython import control as cc

SS_STATES = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECEIVED": "SYN-RECV",
             "FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2", "CLOSE_WAIT": "CLOSE-WAIT",
             "LAST_ACK": "LAST-ACK", "TIME_WAIT": "TIME-WAIT", "CLOSED": "UNCONN"}


def _one_line_errors(p, prog):
    """argparse's error as one line naming the flag (not the usage block), exit status 2."""
    def error(msg):
        sys.stderr.write("%s: %s\n" % (prog, msg))
        sys.exit(2)
    p.error = error
    return p


# ---- ustack up's side ---------------------------------------------------------------------
def add_up_flags(up):
    up.add_argument("--name", default=None,
                    help="the stack's name on the control channel (default: the TAP's name); "
                         "`ustack ss --name NAME` finds it")
    up.add_argument("--no-control", action="store_true",
                    help="do not open the control channel")


def open_control(args, r):
    if getattr(args, "no_control", False):
        return None
    name = args.name or r["tap"]
    try:
        cc.check_name(name)
        return cc.ControlServer(name, {"driver": r["driver"], "tap": r["tap"],
                                       "runtime": getattr(args, "runtime", "cpython")})
    except ValueError as e:
        raise SystemExit("ustack: --name %s: %s" % (name, e))
    except OSError as e:
        raise SystemExit("ustack: --name %s: cannot open the control socket: %s"
                         % (name, e.strerror or e))


class StatsLine:
    """--stats-interval's `stats` line: wall-clock time, uptime, the interval it covers and
    the delta of every counter over it. Its keys never change between lines (zeros too),
    so a script can diff them; gauges (pool levels) are given as values. `sample` gives the
    counters (default: the stack's own, ctl.all_counters; a stack in another process: its
    control channel's `stats`)."""

    def __init__(self, st, t0, sample=None):
        self.sample = sample or (lambda: ctl.all_counters(st))
        self.t0 = t0
        self.t = t0
        self.prev = self.sample()

    def emit(self, out):
        now = time.monotonic()
        cur = self.sample()
        d = ctl.deltas(self.prev, cur)
        line = {"time": _iso(time.time()), "uptime_s": round(now - self.t0, 3),
                "interval_s": round(now - self.t, 3), "delta": d,
                "gauges": {k: cur[k] for k in ctl.GAUGES if k in cur}}
        self.prev = cur
        self.t = now
        out.write("stats " + json.dumps(line, sort_keys=True) + "\n")
        out.flush()


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def log_status(st, control, out):
    """SIGUSR1: what addr, route, neigh, ss -tuai and stats print, to the log."""
    srv = control.srv if control is not None and control.srv is not None else ctl.Server(st)
    write_status(lambda op: ctl.all_counters(st) if op == "stats" else srv.ops[op]({}), out)


def write_status(ask, out):
    """The status block of log_status, each table from ask(op) (a stack in another process:
    its control channel's call)."""
    out.write("status %s pid=%d\n" % (_iso(time.time()), os.getpid()))
    for line in fmt_addr(ask("addr")) + fmt_route(ask("route")) + fmt_neigh(ask("neigh")) + \
            fmt_ss(ask("ss"), False, False, False, True, True) + \
            fmt_stats(ask("stats"), None, False):
        out.write("  " + line + "\n")
    out.flush()


# ---- tables -------------------------------------------------------------------------------
def fmt_addr(rows):
    out = []
    for n, r in enumerate(rows):
        out.append("%d: %s: <%s> mtu %d" % (n + 1, r["dev"], "UP,LOWER_UP" if r["up"] else "DOWN",
                                           r["mtu"]))
        if r["mac"]:
            out.append("    link/ether %s brd ff:ff:ff:ff:ff:ff" % r["mac"]
                       + (" vlan %d" % r["vlan"] if r.get("vlan") else ""))
        if r["ip"] != "0.0.0.0":
            out.append("    inet %s/%d brd %s scope global %s" % (r["ip"], r["prefix"],
                                                                 r["broadcast"], r["dev"]))
        for a, p, st in r.get("ip6", ()):
            # ip addr's words: a failed DAD is "dadfailed tentative"
            out.append("    inet6 %s/%d scope %s%s" % (
                a, p, "link" if a.startswith("fe80:") else "global",
                {"tentative": " tentative", "duplicate": " dadfailed tentative"}.get(st, "")))
    return out


def fmt_route(rows):
    out = []
    for r in rows:
        dst = "default" if r["prefix"] == 0 and r["dst"] in ("0.0.0.0", "::") else \
            "%s/%d" % (r["dst"], r["prefix"])
        if r["prefix"] == (128 if ":" in r["dst"] else 32) and dst != "default":
            dst = r["dst"]
        # Linux's words: a connected route is "proto kernel"; a static one shows no proto
        proto = r.get("proto") or ("static" if r["via"] else "connected")  # an older stack
        pw = " proto kernel" if proto == "connected" else \
            ("" if proto == "static" else " proto " + proto)
        if r["via"]:
            s = "%s via %s dev %s%s" % (dst, r["via"], r["dev"], pw)
        elif r.get("src"):
            s = "%s dev %s%s scope link src %s" % (dst, r["dev"], pw, r["src"])
        else:
            s = "%s dev %s%s" % (dst, r["dev"], pw)   # IPv6: the source is chosen per
            # destination (RFC 6724)
        if r["metric"]:
            s += " metric %d" % r["metric"]
        out.append(s)
    return out


def fmt_neigh(rows):
    out = []
    for r in rows:
        if r["lladdr"]:
            out.append("%s dev %s lladdr %s %s" % (r["ip"], r["dev"], r["lladdr"], r["state"]))
        else:
            out.append("%s dev %s %s" % (r["ip"], r["dev"], r["state"]))
    return out


def ss_select(rows, tcp, udp, listening, all_):
    """ss's filters: -t/-u pick protocols (none: every one); without -a only connections,
    with -l only listening (bound, unconnected) sockets."""
    out = []
    for r in rows:
        if (tcp or udp) and not ((tcp and r["proto"] == "tcp") or (udp and r["proto"] == "udp")):
            continue
        lis = r["state"] in ("LISTEN", "UNCONN", "CLOSED")
        if not all_ and (lis != bool(listening)):
            continue
        out.append(r)
    return out


def fmt_ss(rows, tcp=False, udp=False, listening=False, all_=False, info=False):
    rows = ss_select(rows, tcp, udp, listening, all_)
    out = ["%-6s %-10s %7s %7s %25s %25s" % ("Netid", "State", "Recv-Q", "Send-Q",
                                              "Local Address:Port", "Peer Address:Port")]
    for r in rows:
        out.append("%-6s %-10s %7d %7d %25s %25s" % (
            r["proto"], SS_STATES.get(r["state"], r["state"]), r["recv_q"], r["send_q"],
            r["local"], r["peer"]))
        if info and "cwnd" in r:
            # ss -i's fields: rtt is srtt/rttvar in ms, retrans current/total (RFC 6298);
            # cwnd and ssthresh in segments as Linux shows them (the core counts bytes)
            mss = r["mss"] or 1
            # the congestion controller's name first, as Linux's ss -ti shows it
            # options first (ts sack ecn, as Linux's ss), and rack when RACK (RFC 8985) runs
            opts = "".join(k + " " for k in ("ts", "sack", "ecn", "rack") if r.get(k))
            s = "\t %s%swscale:%d,%d rto:%d rtt:%g/%g mss:%d cwnd:%d" % (
                opts, r["cc"] + " " if r.get("cc") else "", r["snd_wscale"], r["rcv_wscale"],
                r["rto"], r["srtt"], r["rttvar"], r["mss"], r["cwnd"] // mss)
            if r.get("pmtu"):
                # after mss, where Linux's ss -ti prints the path MTU
                s = s[:s.rindex(" cwnd:")] + " pmtu:%d" % r["pmtu"] + s[s.rindex(" cwnd:"):]
            if r["ssthresh"] is not None:
                s += " ssthresh:%d" % (r["ssthresh"] // mss)
            s += " snd_wnd:%d retrans:%d/%d" % (r["snd_wnd"], r["retrans"], r["retrans_total"])
            # Linux shows the reordering degree only when it differs from the default 3
            if r.get("reordering", 3) != 3:
                s += " reordering:%d" % r["reordering"]
            if r.get("reord_seen"):
                s += " reord_seen:%d" % r["reord_seen"]
            if r.get("rack") and r.get("reo_wnd"):
                s += " rack_reo_wnd:%dms" % r["reo_wnd"]
            if r.get("orphan"):
                s += " orphan"
            out.append(s)
    return out


def fmt_stats(cur, delta, show_all):
    out = []
    for k in sorted(cur):
        if delta is None:
            if cur[k] or show_all:
                out.append("%-40s %14d" % (k, cur[k]))
        elif k in delta:
            if delta[k] or show_all:
                out.append("%-40s %14d %+12d" % (k, cur[k], delta[k]))
    return out


# ---- the subcommands ----------------------------------------------------------------------
def add_parsers(sub):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=None, help="the stack's name (ustack up --name)")
    common.add_argument("--pid", type=int, default=None, help="the stack's process id")
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    words = "ip-like words, e.g. %s"
    for name, h, desc, example in (
            ("addr", "show, add, delete or replace the stack's addresses",
             "ustack addr [show] | ustack addr add|replace ADDR/PREFIX [dev DEV] [gateway GW] "
             "| ustack addr del ADDR/PREFIX [dev DEV] (one IPv4 address per interface: add "
             "gives one to an interface without, replace changes it; IPv6 addresses are "
             "added beside the others, after DAD, and deleted)",
             "replace 192.0.2.5/24 dev eth0"),
            ("route", "show, add or delete routes",
             "ustack route [-6] [show] | ustack route add|replace DST [via GW] [dev DEV] "
             "[metric N] | ustack route del DST (DST: ADDR/PREFIX, ADDR or default; an IPv6 "
             "one like 2001:db8::/48, its link-local GW with dev)",
             "add 198.51.100.0/24 via 192.0.2.1"),
            ("neigh", "show, add, delete or flush ARP neighbours",
             "ustack neigh [show] | ustack neigh add|replace ADDR lladdr MAC [dev DEV] | "
             "ustack neigh del ADDR [dev DEV] | ustack neigh flush [all] [dev DEV] "
             "[nud permanent|all] (static entries go only with nud permanent or all)",
             "add 192.0.2.9 lladdr 02:00:00:00:00:09")):
        p = sub.add_parser(name, parents=[common], help=h, description=desc)
        p.add_argument("words", nargs="*", help=words % example)
        _one_line_errors(p, "ustack " + name)
    p = sub.add_parser("ss", parents=[common], help="list sockets and TCP connections",
                       description="Like ss: connections by default, -l listening sockets, "
                                   "-a both; -t TCP, -u UDP; -i TCP internals (cwnd, srtt, "
                                   "rto, retransmissions). Addresses are always numeric.")
    for f, long_, h in (("-t", "--tcp", "TCP sockets"), ("-u", "--udp", "UDP sockets"),
                        ("-l", "--listening", "listening sockets only"),
                        ("-a", "--all", "listening and connected sockets"),
                        ("-i", "--info", "TCP internals"), ("-n", "--numeric", "(always)")):
        p.add_argument(f, long_, action="store_true", help=h)
    _one_line_errors(p, "ustack ss")
    p = sub.add_parser("stats", parents=[common], help="counters, with deltas (--watch)",
                       description="Every counter of the stack; --watch S prints the change "
                                   "every S seconds (like nstat), each sample stamped.")
    p.add_argument("--watch", type=float, nargs="?", const=1.0, default=None, metavar="S",
                   help="print deltas every S seconds (default 1) until Ctrl-C")
    p.add_argument("--count", type=int, default=0, help="with --watch: stop after N samples")
    p.add_argument("-a", "--all", action="store_true", help="show counters that are zero too")
    _one_line_errors(p, "ustack stats")
    p = sub.add_parser("capture", parents=[common], help="live pcap of every frame in and out",
                       description="Write a pcap stream (tcpdump -r / Wireshark read it) of "
                                   "every frame the stack sends and receives, until Ctrl-C, "
                                   "-c frames or --duration seconds.")
    p.add_argument("-w", "--write", default="-", metavar="FILE",
                   help="pcap file to write ('-': stdout, e.g. | tcpdump -r -)")
    p.add_argument("-c", "--count", type=int, default=0, help="stop after N frames")
    p.add_argument("--duration", type=float, default=0, help="stop after S seconds")
    p.add_argument("-s", "--snaplen", type=int, default=cc.CAPTURE_SNAPLEN,
                   help="bytes kept of each frame (default %d)" % cc.CAPTURE_SNAPLEN)
    _one_line_errors(p, "ustack capture")
    p = sub.add_parser("config", parents=[common], help="show config, set run-time values",
                       description="ustack config [show] | ustack config [set] KEY=VALUE ... "
                                   "(only keys the running stack takes; see `ustack config`)")
    p.add_argument("words", nargs="*", help=words % "set IP_TTL=32")
    _one_line_errors(p, "ustack config")
    p = sub.add_parser("filter", parents=[common], help="show and change packet filter rules",
                       description="ustack filter [list] | ustack filter add [at N] RULE... | "
                                   "ustack filter del N | ustack filter zero | ustack filter "
                                   "flush | ustack filter policy HOOK accept|drop | ustack "
                                   "filter ct. RULE: HOOK [iif NAME] [oif NAME] [ip|ip6|family "
                                   "4|6] [tcp|udp|icmp|icmpv6|proto N] [saddr A/P] [daddr A/P] "
                                   "(A/P IPv4 or IPv6, e.g. 2001:db8::/32) [sport P[-Q]] "
                                   "[dport P[-Q]] [flags F,../F,..] [type NAME|N] [code N] "
                                   "[ct new,established,related,invalid] [limit N/second|minute|"
                                   "hour [burst N]] [log] accept|drop|reject|log [with port|"
                                   "admin|host|net] [else ACTION]; HOOK: prerouting, input, "
                                   "forward, output, postrouting")
    p.add_argument("words", nargs="*", help=words % "add input drop tcp dport 23")
    _one_line_errors(p, "ustack filter")


def parse(argv):
    """Parse `ustack <control command> ...` alone, so every usage error is one line."""
    p = argparse.ArgumentParser(prog="ustack")
    _one_line_errors(p, "ustack")
    add_parsers(p.add_subparsers(dest="cmd"))
    # `ustack route -6`: IPv6's table, as `ip -6 route` (taken out here: an option that
    # looks like a negative number would make argparse read `metric -1` as an option)
    six = argv[:1] == ["route"] and "-6" in argv[1:]
    if six:
        argv = list(argv)
        argv.remove("-6")
    args, extra = p.parse_known_args(argv)
    args.six = six
    if extra:
        sys.stderr.write("ustack %s: unknown argument %s\n" % (args.cmd, extra[0]))
        sys.exit(2)
    return args


def run(args):
    if isinstance(args, list):
        args = parse(args)
    prog = "ustack " + args.cmd
    try:
        req = _requests(args)   # every word checked before the stack is asked anything
        if args.cmd == "capture":
            return _capture(args, prog)
        c = cc.find(args.name, args.pid)
        try:
            if args.cmd == "stats":
                return _stats(c, args)
            data = None
            for op, kw in req:
                data = c.call(op, **kw)
            if (len(req) > 1 or req[0][0] != _show_op(args.cmd)) and args.cmd != "filter":
                # what changed, shown as after `show` (an IPv6 route: IPv6's table)
                six = args.cmd == "route" and any(":" in str(kw.get("dst")) for _, kw in req)
                data = c.call(_show_op(args.cmd), **({"family": 6} if six else {}))
        finally:
            c.close()
    except (cc.ClientError, _Bad) as e:
        raise SystemExit("%s: %s" % (prog, e))
    _print(args, data)
    return 0


class _Bad(Exception):
    pass


def _check_cidr6(verb, v):
    """An IPv6 ADDR/PREFIX whose host bits are clear, or one line naming it."""
    import ipaddress
    try:
        n = ipaddress.IPv6Network(v, strict=False)
    except ValueError:
        raise _Bad("%s %s: not an IPv6 ADDR/PREFIX" % (verb, v))
    if "/" not in v:
        raise _Bad("%s %s: give the prefix too, e.g. %s/64" % (verb, v, v))
    if n.network_address != ipaddress.IPv6Interface(v).ip:
        raise _Bad("%s %s: host bits set (the network is %s)" % (verb, v, n))


def _check_via6(v, dev):
    """An IPv6 gateway; a link-local one names its link (RFC 4007: fe80:: is per link)."""
    import ipaddress
    try:
        a = ipaddress.IPv6Address(v)
    except ValueError:
        raise _Bad("via %s: not an IPv6 address" % v)
    if a.is_link_local and not dev:
        raise _Bad("via %s: a link-local gateway needs dev DEV" % v)
    return v


def _show_op(cmd):
    return {"addr": "addr", "route": "route", "neigh": "neigh", "ss": "ss",
            "config": "config", "filter": "filter"}[cmd]


def _kw(words, allowed):
    """['via', 'X', 'dev', 'Y'] -> {'via': 'X', 'dev': 'Y'}; an unknown or valueless word is
    named."""
    out = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w not in allowed:
            raise _Bad("unknown word %r (expected: %s)" % (w, ", ".join(allowed)))
        if i + 1 >= len(words):
            raise _Bad("%s needs a value" % w)
        if w in out:
            raise _Bad("%s given twice" % w)
        out[w] = words[i + 1]
        i += 2
    return out


# the same checks as `ustack up`'s flags (cli.py: one function per kind of value)
def _checked(check, word, v):
    from ustack.ports.cpython import cli
    try:
        check(word, v)
    except cli.BadValue as e:
        raise _Bad(e.detail)
    return v


def _check_addr(word, v):
    from ustack.ports.cpython import cli
    return _checked(cli.check_ipv4, word, v)


def _check_host_cidr(word, v):
    from ustack.ports.cpython import cli
    return _checked(cli.check_cidr, word, v)


def _check_host_cidr6(word, v):
    from ustack.ports.cpython import cli
    return _checked(cli.check_cidr6, word, v)


def _check_cidr(word, v, default_ok=False):
    from ustack.ports.cpython import cli
    if v == "default" and not default_ok:
        raise _Bad("%s %s: not an address/prefix like 192.0.2.0/24" % (word, v))
    return _checked(cli.check_destination, word, v)


def _check_mac(word, v):
    from ustack.ports.cpython import cli
    return _checked(cli.check_mac, word, v)


def _requests(args):
    """The (op, args) requests a command line means, every word checked."""
    cmd = args.cmd
    if cmd in ("ss", "stats", "capture"):
        if cmd == "stats" and args.watch is not None and not (0 < args.watch < 86400):
            raise _Bad("--watch %s: seconds, more than 0" % args.watch)
        if getattr(args, "count", 0) < 0:
            raise _Bad("--count %d: 0 (no limit) or more" % args.count)
        if cmd == "capture":
            if not 0 <= args.duration < 1e9:
                raise _Bad("--duration %s: seconds, 0 (no limit) or more" % args.duration)
            if not 1 <= args.snaplen <= cc.CAPTURE_SNAPLEN:
                raise _Bad("-s/--snaplen %d: 1..%d" % (args.snaplen, cc.CAPTURE_SNAPLEN))
        return [(cmd, {})]
    w = list(args.words)
    verb = w.pop(0) if w else "show"
    if cmd == "filter":
        return _filter_requests(verb, w)
    if verb in ("show", "list", "ls"):
        if w:
            raise _Bad("show takes no more words, got %r" % w[0])
        if cmd == "route" and getattr(args, "six", False):
            return [(cmd, {"family": 6})]
        return [(cmd, {})]
    if cmd == "addr":
        ops = {"add": "addr.add", "del": "addr.del", "delete": "addr.del", "replace": "addr.set",
               "change": "addr.set", "set": "addr.set"}
        if verb not in ops:
            raise _Bad("unknown action %r (expected: show, add, del, replace)" % verb)
        if not w:
            raise _Bad("%s needs ADDR/PREFIX" % verb)
        ip = w.pop(0)
        if ":" in ip:
            # IPv6: add and del, beside the interface's other addresses (no replace)
            if ops[verb] == "addr.set":
                raise _Bad("%s: an IPv6 address is added or deleted, not replaced" % ip)
            _check_host_cidr6(verb, ip)
            kw = _kw(w, ("dev",))
            return [(ops[verb], {"ip": ip, "dev": kw.get("dev") or "eth0"})]
        if "/" not in ip:
            raise _Bad("%s: give the prefix too, e.g. %s/24" % (ip, ip))
        _check_host_cidr(verb, ip)
        kw = _kw(w, ("dev",) if ops[verb] == "addr.del" else ("dev", "gateway"))
        req = {"ip": ip, "dev": kw.get("dev") or "eth0"}
        if "gateway" in kw:
            req["gateway"] = _check_addr("gateway", kw["gateway"])
        return [(ops[verb], req)]
    if cmd == "route":
        if verb not in ("add", "replace", "del", "delete"):
            raise _Bad("unknown action %r (expected: show, add, replace, del)" % verb)
        if not w:
            raise _Bad("%s needs a destination (ADDR/PREFIX or default)" % verb)
        dst = w.pop(0)
        six = ":" in dst     # IPv6: checked here as the stack would (core/ctl.py)
        if getattr(args, "six", False) and not six and dst != "default":
            raise _Bad("-6: %s is not an IPv6 destination" % dst)
        if six:
            _check_cidr6(verb, dst)
        else:
            dst = _check_cidr(verb, dst, True)
        if verb in ("del", "delete"):
            _kw(w, ("via", "dev", "metric"))
            return [("route.del", {"dst": dst})]
        kw = _kw(w, ("via", "dev", "metric"))
        req = {"dst": dst}
        if "via" in kw:
            req["via"] = _check_via6(kw["via"], kw.get("dev")) if six else \
                _check_addr("via", kw["via"])
        if "dev" in kw:
            req["dev"] = kw["dev"]
        if "metric" in kw:
            try:
                req["metric"] = int(kw["metric"])
                if req["metric"] < 0:
                    raise ValueError
            except ValueError:
                raise _Bad("metric %s: an integer 0 or more" % kw["metric"])
        if "via" not in req and "dev" not in req:
            raise _Bad("%s %s: give via GATEWAY or dev DEV" % (verb, dst))
        return [("route.add", req)]
    if cmd == "neigh":
        if verb == "flush":
            if w and w[0] == "all":
                w.pop(0)
            kw = _kw(w, ("dev", "nud"))
            req = {}
            if "dev" in kw:
                req["dev"] = kw["dev"]
            if "nud" in kw:
                if kw["nud"] not in ("permanent", "all"):
                    raise _Bad("nud %s: permanent or all (learned entries go anyway)"
                               % kw["nud"])
                req["permanent"] = True
            return [("neigh.flush", req)]
        if verb not in ("add", "replace", "del", "delete"):
            raise _Bad("unknown action %r (expected: show, add, replace, del, flush)" % verb)
        if not w:
            raise _Bad("%s needs an address" % verb)
        ip = _check_addr(verb, w.pop(0))
        if verb in ("del", "delete"):
            kw = _kw(w, ("dev",))
            req = {"ip": ip}
        else:
            kw = _kw(w, ("lladdr", "dev", "nud"))
            if "lladdr" not in kw:
                raise _Bad("%s %s: give lladdr MAC" % (verb, ip))
            req = {"ip": ip, "lladdr": _check_mac("lladdr", kw["lladdr"])}
        if "dev" in kw:
            req["dev"] = kw["dev"]
        return [("neigh.del" if verb.startswith("del") else "neigh.add", req)]
    if cmd == "config":
        if "=" in verb:  # `ustack config KEY=VALUE ...`: set is understood
            w.insert(0, verb)
            verb = "set"
        if verb != "set":
            raise _Bad("unknown action %r (expected: show, set, or KEY=VALUE)" % verb)
        if not w:
            raise _Bad("set needs KEY=VALUE")
        out = []
        from ustack.core import config as cf
        for it in w:
            if "=" not in it:
                raise _Bad("set wants KEY=VALUE, got %r" % it)
            k, v = it.split("=", 1)
            if k not in cf.DEFAULTS:
                raise _Bad("set %s: unknown config key %r" % (it, k))
            if k not in ctl.RUNTIME_KEYS:
                raise _Bad("set %s: %s is fixed at start (at run time: %s)"
                           % (it, k, ", ".join(sorted(ctl.RUNTIME_KEYS))))
            try:
                val = int(v)
            except ValueError:
                if v.lower() not in ("true", "false"):
                    raise _Bad("set %s: %s wants an integer or true/false" % (it, k))
                val = v.lower() == "true"
            try:
                cf.check_key(k, val)
            except ValueError as e:
                raise _Bad("set %s: %s" % (it, str(e).replace("config: ", "")))
            out.append(("config.set", {"key": k, "value": val}))
        return out
    raise _Bad("unknown command")


def _filter_requests(verb, w):
    """`ustack filter ...` -> requests; a rule is parsed here too, so a mistake is named
    before the stack is asked."""
    from ustack.core import filter as pf
    if verb in ("show", "list", "ls", "zero", "flush", "ct"):
        if w:
            raise _Bad("%s takes no more words, got %r" % (verb, w[0]))
        return [({"show": "filter", "list": "filter", "ls": "filter"}.get(verb, "filter." + verb),
                 {})]
    if verb == "add":
        req = {}
        if w[:1] == ["at"]:
            if len(w) < 2:
                raise _Bad("at needs a rule number")
            try:
                req["pos"] = int(w[1])
                if req["pos"] < 0:
                    raise ValueError
            except ValueError:
                raise _Bad("at %s: a rule number 0 or more" % w[1])
            w = w[2:]
        if not w:
            raise _Bad("add needs a rule, e.g. input drop tcp dport 23")
        text = " ".join(w)
        try:
            pf.parse_rule(text)
        except ValueError as e:
            raise _Bad(str(e))
        req["rule"] = text
        return [("filter.add", req)]
    if verb in ("del", "delete"):
        if len(w) != 1:
            raise _Bad("%s needs one rule number (see ustack filter list)" % verb)
        try:
            n = int(w[0])
            if n < 0:
                raise ValueError
        except ValueError:
            raise _Bad("%s %s: a rule number 0 or more" % (verb, w[0]))
        return [("filter.del", {"n": n})]
    if verb == "policy":
        if len(w) != 2:
            raise _Bad("policy needs HOOK and accept|drop, e.g. policy input drop")
        try:
            pf.parse_policy("policy %s %s" % (w[0], w[1]))
        except ValueError as e:
            raise _Bad(str(e))
        return [("filter.policy", {"hook": w[0], "action": w[1]})]
    raise _Bad("unknown action %r (expected: list, add, del, zero, flush, policy, ct)" % verb)


def fmt_filter(d):
    """Like `nft list ruleset`: policies, then each rule with its number and counters."""
    lines = ["policy " + ", ".join("%s %s" % (h, d["policy"][h]) for h in
                                   ("prerouting", "input", "forward", "output", "postrouting")),
             "conntrack %d/%d" % (d["conntrack"]["used"], d["conntrack"]["size"]),
             "%3s %10s %12s  %s" % ("N", "packets", "bytes", "rule")]
    for r in d["rules"]:
        lines.append("%3d %10d %12d  %s" % (r["n"], r["packets"], r["bytes"], r["rule"]))
    return lines


def fmt_ct(rows):
    names = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
    lines = ["%-6s %-12s %-22s %-22s %8s" % ("proto", "state", "orig src", "orig dst",
                                             "expires")]
    for r in rows:
        v6 = ":" in r["src"]   # [addr]:port, as ss writes IPv6 ends
        lines.append("%-6s %-12s %-22s %-22s %7.1fs%s" % (
            names.get(r["proto"], str(r["proto"])), r["state"] or "-",
            ("[%s]:%d" if v6 else "%s:%d") % (r["src"], r["sport"]),
            ("[%s]:%d" if v6 else "%s:%d") % (r["dst"], r["dport"]),
            r["expires_ms"] / 1000.0, "" if r["replied"] else " [unreplied]"))
    return lines


def _print(args, data):
    if args.json:
        print(json.dumps(data, sort_keys=True))
        return
    cmd = args.cmd
    if cmd == "addr":
        lines = fmt_addr(data)
    elif cmd == "route":
        lines = fmt_route(data)
    elif cmd == "neigh":
        lines = fmt_neigh(data)
    elif cmd == "ss":
        lines = fmt_ss(data, args.tcp, args.udp, args.listening, args.all, args.info)
    elif cmd == "config":
        rt = data["runtime_keys"]
        lines = ["%-28s %-12s %s" % (k, data["config"][k], "run-time" if k in rt else "")
                 for k in sorted(data["config"])]
    elif cmd == "filter":
        lines = fmt_ct(data) if isinstance(data, list) else fmt_filter(data)
    else:
        lines = []
    for ln in lines:
        print(ln.rstrip())
    sys.stdout.flush()


def _stats(c, args):
    prev = c.call("stats")
    if args.watch is None:
        if args.json:
            print(json.dumps({"time": _iso(time.time()), "counters": prev}, sort_keys=True))
        else:
            for ln in fmt_stats(prev, None, args.all):
                print(ln)
        return 0
    n = 0
    t = time.monotonic()
    try:
        while not args.count or n < args.count:
            t += args.watch
            rest = t - time.monotonic()
            if rest > 0:
                time.sleep(rest)
            cur = c.call("stats")
            d = ctl.deltas(prev, cur)
            prev = cur
            n += 1
            if args.json:
                print(json.dumps({"time": _iso(time.time()), "interval_s": args.watch,
                                  "counters": cur, "delta": d}, sort_keys=True), flush=True)
            else:
                print("#%s interval %gs" % (_iso(time.time()), args.watch))
                for ln in fmt_stats(cur, d, args.all):
                    print(ln)
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def _capture(args, prog):
    """Copy the stack's pcap stream to -w until -c frames, --duration or Ctrl-C."""
    import struct
    if args.write == "-":
        if sys.stdout.isatty():
            raise _Bad("-w -: not writing pcap to a terminal (give -w FILE or pipe it to "
                       "tcpdump -r -)")
        out = sys.stdout.buffer
    else:
        d = os.path.dirname(os.path.abspath(args.write))
        if not os.path.isdir(d):
            raise _Bad("-w %s: no directory %s" % (args.write, d))
        try:
            out = open(args.write, "wb")
        except OSError as e:
            raise _Bad("-w %s: %s" % (args.write, e.strerror or e))
    asked = cc.find(args.name, args.pid)  # the stack's drop count, before and after
    try:
        dropped = asked.call("stats").get("ctl.capture_dropped", 0)
        c = cc.find(args.name, args.pid)
    except cc.ClientError:
        asked.close()
        raise
    frames = 0
    try:
        c.sock.sendall(ctl.request("capture", snaplen=args.snaplen))
        line = b""
        while not line.endswith(b"\n") and len(line) <= ctl.MAX_LINE:
            b = c.sock.recv(1)  # byte by byte: the pcap stream follows the line
            if not b:
                break
            line += b
        try:
            ctl.decode_response(line)
        except ctl.CtlError as e:
            raise cc.ClientError(str(e))
        c.sock.settimeout(0.2)
        end = time.monotonic() + args.duration if args.duration else 0
        hdr = _read(c, 24, end)
        if hdr is None:
            return 0
        out.write(hdr)
        out.flush()
        while not args.count or frames < args.count:
            rec = _read(c, 16, end)
            if rec is None:
                break
            caplen = struct.unpack("<IIII", rec)[2]
            body = _read(c, caplen, 0)
            if body is None:
                break
            out.write(rec + body)
            out.flush()
            frames += 1
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        pass
    finally:
        c.close()
        if out is not sys.stdout.buffer:
            out.close()
        try:
            dropped = asked.call("stats").get("ctl.capture_dropped", 0) - dropped
        except cc.ClientError:
            dropped = None  # the stack went away first
        asked.close()
    # like tcpdump's summary; with --json one object (on stderr: stdout may be the pcap)
    if args.json:
        sys.stderr.write(json.dumps({"captured": frames, "dropped": dropped},
                                    sort_keys=True) + "\n")
    else:
        sys.stderr.write("%d packets captured\n" % frames)
        if dropped is not None:
            sys.stderr.write("%d packets dropped by the stack (capture queue full)\n"
                             % dropped)
    return 0


def _read(c, n, end):
    """n bytes from the stream, None at EOF or when the deadline `end` passed."""
    import socket
    buf = b""
    while len(buf) < n:
        if end and time.monotonic() >= end:
            return None
        try:
            b = c.sock.recv(n - len(buf))
        except socket.timeout:
            continue
        except OSError:
            return None
        if not b:
            return None
        buf += b
    return buf
