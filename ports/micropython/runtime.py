"""`ustack up --runtime micropython`: the same flags as the CPython runtime, but the stack runs
under the MicroPython unix port, joined to the TAP by the CPython bridge.

    TAP (kernel) <-> ports/cpython/bridge.py <-> AF_UNIX stream <-> micropython main.py

--driver picks what runs inside micropython between the stack and that stream:
    tap (default)              StreamLink: the stream is the stack's link
    sim-enc28j60 / sim-w5500   the real SPI driver on its virtual chip (ports/micropython/
                               simlink.py SimChip); the chip's wire is the stream
    slip-pty                   SlipLink on a pty (its slave fd inherited, non-blocking); the
                               pty master is served here by bridge.SlipBridge (SLIP <->
                               Ethernet, proxy ARP: simdrivers.SlipProxy), no stream

run_up(args) (args: the `ustack up` argparse Namespace) creates the TAP and configures its
kernel side (--host-ip), stages the code (ports/micropython/stage.py), starts the bridge and
`micropython main.py --settings FILE`, waits until the stack answers an ARP probe, prints
one `ready ...` line, and on SIGINT/SIGTERM closes the link (the MicroPython loop sees the
stream end and stops between two polls; SIGINT follows if it does not) and prints the
stack's counters (plus the bridge's).

MicroPython-only knobs (no CLI flag, so the CPython runtime's flags stay the same):
    USTACK_MPY_HEAPSIZE     -X heapsize for micropython (default: the board's HEAPSIZE; for an
                            MCU board 2 x HEAP + 256K, since on the 64-bit unix port objects
                            are twice their size on a 32-bit MCU and the code is not frozen
                            (tests/micropython/test_memory.py); else 16M)
    USTACK_MPY_CONTROL_PORT UDP port of the stack's control service (control.Control); 0 = off.
                            Unset: CONTROL_PORT (4243) when --host-ip is given and not
                            --no-control, answering only the host's address, so `ustack
                            addr/route/neigh/ss/stats/config` reach it as they reach a
                            CPython stack (this process holds the control socket, forwards)
    USTACK_MPY_EMIT         -X emit=native|viper for everything (default: bytecode)
    USTACK_MICROPYTHON      the micropython command
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


MPY_DRIVERS = ("tap", "sim-enc28j60", "sim-w5500", "slip-pty")


def _features(r):
    """The board's FEATURES, plus those its settings select (what `invoke mpy` would ship for
    this configuration): ipv6 with config IPV6 (on unless turned off: the link-local address
    is always there), filter with FILTER rules, rip with RIP, dhcp with --dhcp."""
    f = list(r["features"] or ())
    cfg = r["config"]
    for feat, on in (("ipv6", cfg.get("IPV6")), ("filter", cfg.get("FILTER")),
                     ("rip", cfg.get("RIP")), ("forwarding", cfg.get("IP_FORWARD")),
                     ("dhcp", r.get("dhcp"))):
        if on and feat not in f:
            f.append(feat)
    return f


# The control service answers in one UDP datagram through the stack (UdpForward): the full
# counter set with the IPv6 groups is ~10 KB, above the default REASS_SIZE (8 KB), which
# bounds the scratch buffer a datagram bigger than a packet buffer is fragmented from
CONTROL_REASS_SIZE = 16384


def _config(r, control):
    cfg = dict(r["config"])
    if control and cfg.get("IPV6") and "REASS_SIZE" not in cfg:
        cfg["REASS_SIZE"] = CONTROL_REASS_SIZE
    return cfg


def _settings(r, args, spec, driver="streamlink", links=()):
    board = r["board"]
    return {
        "NAME": getattr(board, "NAME", "?"),
        "DRIVER": driver,
        "LINK": spec,
        "IP": r["ip"],
        "GATEWAY": r["gateway"],
        "DNS": list(r.get("dns") or ()),
        "MAC": r["mac"],
        "MTU": r["mtu"],
        "CONFIG": _config(r, control_port(args, r)),
        "FEATURES": _features(r),
        "IP6": list(r.get("ip6") or ()),
        # eth1, eth2, ...: one stream (and bridge, and TAP) each; (spec, mac) from run_up
        "LINKS": [{"LINK": sp, "IP": d["ip_text"], "MAC": mac, "MTU": d["mtu"],
                   "IP6": list(d["ip6"])} for d, sp, mac in links],
        "SERVE": getattr(args, "serve", "") or "",
        "STATS_INTERVAL": getattr(args, "stats_interval", 0) or 0,
        "CONTROL_PORT": control_port(args, r),
        "CONTROL_PEER": r["host_ip"].split("/")[0] if r.get("host_ip") else None,
        "DURATION": 0,
        "DHCP": bool(r.get("dhcp")),
        "DHCP_HOSTNAME": r.get("dhcp_hostname"),
        "DHCP_LEASE_FILE": os.path.abspath(r["dhcp_lease_file"]) if r.get("dhcp_lease_file")
        else None,
        "HTTP_ROOT": os.path.abspath(args.http_root) if getattr(args, "http_root", None)
        else None,
    }


CONTROL_PORT = 4243  # the stack's UDP control port behind `ustack up --runtime micropython`


def control_port(args, r):
    """The UDP port the micropython stack's control service listens on (0: none):
    USTACK_MPY_CONTROL_PORT when set, else CONTROL_PORT when the host can reach the stack
    (--host-ip) and the control channel is wanted."""
    env = os.environ.get("USTACK_MPY_CONTROL_PORT")
    if env:
        return int(env)
    if getattr(args, "no_control", False) or not r.get("host_ip"):
        return 0
    return CONTROL_PORT


def heapsize_for(board):
    v = os.environ.get("USTACK_MPY_HEAPSIZE") or getattr(board, "HEAPSIZE", None)
    if v:
        return str(v)
    heap = getattr(board, "HEAP", None)
    if heap:
        # an MCU board: objects are twice as big on the 64-bit unix port and the code is not
        # frozen (~150 KB of heap), so give it twice the board's heap plus the code
        return "%dK" % (2 * heap // 1024 + 256)
    return "16M"  # a PC board; a bigger heap only makes each GC pass slower


def print_counters(c, as_json=False, out=sys.stdout):
    """Same format as the CPython runtime (cli.print_counters): counters, then limits."""
    from ustack.ports.cpython import cli
    cli.print_counters(c, as_json, out)


class StopFlag:
    """A stop signal's record, set by the signal handler and read by the main loop. The
    handler only appends to a list: it runs in the main thread between two bytecodes, maybe
    inside the main loop's own wait, so a lock taken there (threading.Event.set) can be the
    one the main thread already holds, and the run hangs at Ctrl-C."""

    STEP_S = 0.05  # how soon a wait sees a signal (PEP 475: sleep resumes after a handler)

    def __init__(self, got=None):
        self.got = [] if got is None else got

    def note(self, signum, frame=None):
        self.got.append(signum)

    def is_set(self):
        return bool(self.got)

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while not self.got:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, self.STEP_S))
        return bool(self.got)


class MpProcess:
    """The micropython child: reads its stdout, keeps the last counters line."""

    def __init__(self, cmd, cwd, echo=None, pass_fds=()):
        # its own process group: a terminal's Ctrl-C reaches `ustack up` only, which then
        # ends the child in order (link closed, counters read) instead of both racing
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL, pass_fds=pass_fds,
                                     start_new_session=True)
        self.up_line = None
        self.up = threading.Event()
        self.counters = None
        self.failures = []
        self.echo = echo  # called with counters lines while running (--stats-interval)
        self.lines = []
        self.t = threading.Thread(target=self._read, name="micropython stdout", daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("up "):
                self.up_line = line
                self.up.set()
            elif line.startswith("counters "):
                try:
                    self.counters = json.loads(line[9:])
                except ValueError:
                    continue
                if self.echo is not None:
                    self.echo(self.counters)
            elif line == "link closed":
                pass  # how runtime stops it
            elif line.startswith("heap-lock-failure"):
                self.failures.append(line)
                sys.stderr.write("micropython: " + line + "\n")
            else:
                sys.stderr.write("micropython: " + line + "\n")
        self.up.set()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5.0, grace=0.0):
        """Wait `grace` s for a clean exit (the link was closed: the loop ends between two
        polls), then SIGINT (KeyboardInterrupt, which may land inside a poll), then kill."""
        if grace and self.alive():
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.t.join(2)
        return self.proc.returncode


def run_up(args):
    from ustack.ports.cpython import cli
    from ustack.ports.cpython.bridge import Bridge
    from ustack.ports.micropython.stage import stage, micropython_exe
    from ustack.hal.tap import Tap

    r = cli.resolve(args)  # the flags' checks (and cmd_up's cli.check_link: the driver, the
    kind = getattr(args, "driver", None) or "tap"  # TAP name's length, micropython, privileges)
    from ustack.ports.cpython import hostlink
    try:
        theirs = hostlink.exists(r["tap"])  # a persistent TAP (ip tuntap add) outlives us
    except hostlink.HostError as e:
        raise SystemExit("ustack: %s" % (e,))
    control = _open_control(args, r)
    # any board works: its CONFIG/FEATURES run under the unix port, the bridge replaces its
    # link (an MCU board's SPI chip cannot be driven from the unix port)
    board = r["board"]
    work = tempfile.mkdtemp(prefix="ustack-mpy-")
    tap = br = mp = None
    more = []  # the --link TAPs: [spec dict, Tap, Bridge] each (eth1, eth2, ...)
    got = list(cli._stop)  # a signal cli.main caught before this point
    stop = StopFlag(got)
    status = []  # SIGUSR1 seen: the main loop writes the status (a handler takes no locks)
    on_signal = stop.note

    def on_status(signum, frame):
        status.append(signum)
    # SIGHUP (the terminal went away) ends the run like SIGINT/SIGTERM, SIGUSR1 logs the
    # status, as under the CPython runtime; from here on, so a signal while the TAP, bridge
    # and child are being made ends the run cleanly too
    for sig in cli.STOP_SIGNALS:
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGUSR1, on_status)
    as_json = getattr(args, "json", False)
    rc = 0
    ready = False
    try:
        if stop.is_set():
            return cli.stopped_early(got[0])
        try:
            tap = Tap(r["tap"], mtu=r["mtu"], queues=r.get("tap_queues", 1))
        except OSError as e:
            raise SystemExit("ustack: %s" % hostlink.explain_open(e, "tap", r["tap"]))
        if cli.host_setup(tap.name, r["host_ip"], r["mtu"]) and theirs:
            hostlink.remove_on_close(tap, tap.name, r["host_ip"])
        _host_ip6(hostlink, tap, r["host_ip6"], theirs)
        for d in r["links"]:
            try:
                mine = not hostlink.exists(d["tap"])
                t = Tap(d["tap"], mtu=d["mtu"], queues=r.get("tap_queues", 1))
            except hostlink.HostError as e:
                raise SystemExit("ustack: --link: %s" % (e,))
            except OSError as e:
                raise SystemExit("ustack: --link: %s" % hostlink.explain_open(e, "tap", d["tap"]))
            more.append([d, t, None])
            if cli.host_setup(t.name, d["host_ip"], d["mtu"]) and not mine:
                hostlink.remove_on_close(t, t.name, d["host_ip"])
        stage(work, board)
        pass_fds = ()
        if kind == "slip-pty":
            br, spec, slave = _slip_bridge(tap, r, getattr(args, "pcap", None))
            pass_fds = (slave,)
        else:
            br = Bridge(tap, "unix:" + os.path.join(work, "link.sock"),
                        pcap=getattr(args, "pcap", None))
            spec = br.spec
        for n, m in enumerate(more, 1):  # one bridge per TAP, one stream per link
            m[2] = Bridge(m[1], "unix:" + os.path.join(work, "link%d.sock" % n))
        settings = _settings(r, args, spec, "streamlink" if kind == "tap" else kind,
                             [(m[0], m[2].spec, m[0]["mac"] or cli._link_mac(r, m[0]))
                              for m in more])
        spath = os.path.join(work, "settings.json")
        with open(spath, "w") as f:
            json.dump(settings, f)
        cmd = [micropython_exe(), "-X", "heapsize=" + heapsize_for(board)]
        if os.environ.get("USTACK_MPY_EMIT"):
            cmd += ["-X", "emit=" + os.environ["USTACK_MPY_EMIT"]]
        cmd += [os.path.join(work, "main.py"), "--settings", spath]
        echo = (lambda c: print_counters(c, True)) if settings["STATS_INTERVAL"] else None
        mp = MpProcess(cmd, work, echo, pass_fds)
        for fd in pass_fds:
            os.close(fd)  # micropython holds the pty's slave side now

        ip = r["ip"].split("/")[0]
        if kind == "slip-pty":
            br.start()
            mp.up.wait(30)
            if not br.probe(_probe_source(r), timeout=20):
                mp.stop()
                raise SystemExit("ustack: the micropython stack does not answer a ping over "
                                 "its SLIP line")
        else:
            end = time.monotonic() + 30
            connected = False
            while time.monotonic() < end and mp.alive() and not stop.is_set():
                if br.accept(0.2):
                    connected = True
                    break
            if stop.is_set():
                rc = _stopped_early(mp, got[0])
                return rc
            for m in more:  # the stack connects its links in order, eth0 first
                if not connected:
                    break
                connected = False
                end = time.monotonic() + 10
                while time.monotonic() < end and mp.alive() and not stop.is_set():
                    if m[2].accept(0.2):
                        connected = True
                        break
            if stop.is_set():
                rc = _stopped_early(mp, got[0])
                return rc
            if not connected:
                mp.stop()
                raise SystemExit("ustack: the micropython stack did not connect (exit %s)"
                                 % (mp.proc.returncode,))
            br.start()
            for m in more:
                m[2].start()
            end = time.monotonic() + (90 if r.get("dhcp") else 20)  # DHCP: once leased
            while not mp.up.wait(0.1) and not stop.is_set() and time.monotonic() < end:
                pass
            if stop.is_set():
                rc = _stopped_early(mp, got[0])
                return rc
            if r.get("dhcp"):
                if mp.up_line is None or " ip=" not in mp.up_line:
                    mp.stop()
                    raise SystemExit("ustack: --dhcp: the micropython stack got no lease")
                ip = mp.up_line.split(" ip=")[1].split()[0].split("/")[0]
            tap_mac = _iface_mac(tap.name)
            if not br.probe(ip, tap_mac, timeout=20):
                mp.stop()
                raise SystemExit("ustack: the micropython stack does not answer ARP for %s" % ip)
        serve = "-"
        if mp.up_line and "serve=" in mp.up_line:
            serve = mp.up_line.split("serve=")[1].split()[0]
        shown = r["ip"]  # ADDRESS/PREFIX: cli.check_cidr wants the prefix
        lease = ""
        if r.get("dhcp") and mp.up_line:
            shown = mp.up_line.split(" ip=")[1].split()[0]
            if " dhcp=" in mp.up_line:
                lease = " dhcp=" + mp.up_line.split(" dhcp=")[1].strip()
        if stop.is_set():
            rc = _stopped_early(mp, got[0])
            return rc
        ready = True
        v6 = ""
        if mp.up_line and " ip6=" in mp.up_line:  # the CPython runtime's fields
            # (empty on a link without link-layer addresses, SLIP: no link-local address)
            v6 = " ip6=" + (mp.up_line.split(" ip6=")[1].split(" ") + [""])[0]
        v6 += "".join(" eth%d=%s:%s" % (n, m[1].name, m[0]["ip_text"])
                      for n, m in enumerate(more, 1))
        print("ready driver=%s tap=%s ip=%s mac=%s runtime=micropython compiled=False "
              "serve=%s heapsize=%s%s%s" % (settings["DRIVER"], tap.name, shown, r["mac"], serve,
                                           heapsize_for(board), lease, v6), flush=True)
        t0 = time.monotonic()
        sampler = None
        if control is not None:
            from ustack.ports.cpython import control as cc
            control.attach_forward(cc.UdpForward(ip, settings["CONTROL_PORT"]), br)
            if settings["STATS_INTERVAL"]:
                sampler = _stats_line(control, t0)
        duration = getattr(args, "duration", 0) or 0
        last = t0
        while not stop.is_set():
            stop.wait(0.2)
            if sampler is not None and time.monotonic() - last >= settings["STATS_INTERVAL"]:
                last = time.monotonic()
                _emit(sampler)
            if status:
                del status[:]
                _log_status(control)
            if not mp.alive():
                rc = mp.proc.returncode or 1
                sys.stderr.write("ustack: micropython exited (%s)\n" % (mp.proc.returncode,))
                break
            if br.closed.is_set() or any(m[2].closed.is_set() for m in more):
                break
            if duration and time.monotonic() - t0 >= duration:
                break
    finally:
        if control is not None:
            control.close()
        if br is not None and mp is not None and br.conn is not None:
            br.close_link()  # the stack sees the link close and stops between two polls
        if mp is not None:
            code = mp.stop(grace=5.0 if br is not None and br.conn is not None else 0)
            if code not in (0, None) and rc == 0:
                rc = code
            c = dict(mp.counters or {})
            if br is not None:
                c.update(br.counters())
            for n, m in enumerate(more, 1):
                if m[2] is not None:
                    for k, v in m[2].counters().items():  # bridge.eth1.to_stack, ...
                        c[k.replace("bridge.", "bridge.eth%d." % n)] = v
            if tap is not None:
                tap.report(c)
            if mp.failures:
                c["heap_lock.failures"] = len(mp.failures)
            if ready or not got:  # stopped before ready: the one line said so
                print_counters(c, as_json)
        if br is not None:
            br.stop()
        if tap is not None:
            tap.close()
        for m in more:
            if m[2] is not None:
                m[2].stop()
            m[1].close()
        shutil.rmtree(work, ignore_errors=True)
    return rc


def _host_ip6(hostlink, tap, host_ip6, theirs):
    """--host-ip6 on the TAP's kernel side (without DAD: usable at ready), as under the
    CPython runtime; taken off again at close when the TAP outlives us."""
    if not host_ip6:
        return
    try:
        if hostlink.configure6(tap.name, host_ip6) and theirs:
            hostlink.remove_on_close(tap, tap.name, host_ip6)
    except hostlink.HostError as e:
        raise SystemExit("ustack: --host-ip6: %s" % (e,))


def _stopped_early(mp, sig):
    """A stop signal before `ready`: the child has nothing to report yet, so it is ended
    at once (SIGKILL: no KeyboardInterrupt trace from it), and one line says why."""
    from ustack.ports.cpython import cli
    if mp is not None and mp.alive():
        mp.proc.kill()
        mp.proc.wait()
    return cli.stopped_early(sig)


def _stats_line(control, t0):
    """--stats-interval's `stats` line (ctlcli.StatsLine), the counters asked over the control
    port: the same stable key set and shape as under the CPython runtime. None when the
    stack does not answer."""
    from ustack.ports.cpython import ctlcli
    from ustack.core import ctl
    try:
        return ctlcli.StatsLine(None, t0, lambda: control.call("stats"))
    except ctl.CtlError:
        return None


def _emit(sampler):
    from ustack.core import ctl
    try:
        sampler.emit(sys.stdout)
    except ctl.CtlError:
        pass  # no answer this time (a busy or stopping stack): the next line covers it


def _log_status(control):
    """SIGUSR1: the status block of the CPython runtime (ctlcli.write_status), asked over the
    control port; one line saying why when there is none."""
    from ustack.ports.cpython import ctlcli
    from ustack.core import ctl
    if control is None:
        sys.stderr.write("status: no control port (--host-ip and no --no-control give one)\n")
        return
    try:
        ctlcli.write_status(control.call, sys.stderr)
    except ctl.CtlError as e:
        sys.stderr.write("status: %s\n" % (e,))


def _open_control(args, r):
    """`ustack addr/route/neigh/ss/stats` reach the micropython stack through its UDP control
    port (control_port): this process holds the control socket and forwards each request.
    None when the port is off."""
    if not control_port(args, r):
        return None
    from ustack.ports.cpython import ctlcli
    return ctlcli.open_control(args, r)


def _slip_bridge(tap, r, pcap):
    """A raw pty: its master served by bridge.SlipBridge, its slave (non-blocking) for
    micropython's SlipLink. Returns (bridge, LINK spec, slave fd)."""
    import pty
    import tty
    from ustack.ports.cpython.bridge import SlipBridge
    from ustack.core.wire import ipv4 as ip4
    from ustack.core.wire.ethernet import parse_mac
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    os.set_blocking(s, False)
    a, _ = ip4.parse_cidr(r["ip"])
    br = SlipBridge(tap, m, parse_mac(r["mac"]), a, pcap=pcap)
    return br, "fd:%d" % s, s


def _probe_source(r):
    """The address the SLIP probe pings from: the TAP's (--host-ip), else another address
    on the stack's subnet (the stack answers over the line either way: no ARP on SLIP)."""
    if r["host_ip"]:
        return r["host_ip"].split("/")[0]
    parts = r["ip"].split("/")[0].split(".")
    parts[3] = "1" if parts[3] != "1" else "2"
    return ".".join(parts)


def _iface_mac(name):
    with open("/sys/class/net/%s/address" % name) as f:
        return bytes(int(x, 16) for x in f.read().strip().split(":"))


# ---- a program of one's own over the stack (`network` / `socket` facades) -------------------
def shadow_dir(lib):
    """The folder to put first on MicroPython's sys.path so that `import socket`,
    `import usocket` and `import network` give ustack's facades (usock.py, netif.py)."""
    return os.path.join(lib, "ustack", "ports", "micropython", "shadow")


def run_script(script, argv=(), tap="ustack0", ip="192.0.2.2/24", host_ip=None, mac=None,
               mtu=1500, board="unix", libs=(), heapsize=None, timeout=None, pcap=None):
    """Run `micropython script argv...` with ustack as its network: a TAP (its kernel side
    configured with host_ip), the bridge, and MICROPYPATH = the facades, the staged ustack,
    then `libs` (folders of third-party modules, e.g. urequests). The script makes the NIC:
    `network.LAN().active(True)` reads the link and address from $USTACK_MPY_SETTINGS.
    It runs under ports/micropython/mpyrun.py, which installs the socket facade before its
    first line. Its stdout and stderr are ours. Returns its exit status (-9 when timeout ran out)."""
    from ustack.ports.cpython.bridge import Bridge
    from ustack.ports.cpython import cli
    from ustack.ports.micropython.stage import stage_lib, micropython_exe
    from ustack.hal.tap import Tap
    from ustack import boards
    b = boards.load(board)
    work = tempfile.mkdtemp(prefix="ustack-mpy-run-")
    t = br = p = None
    try:
        t = Tap(tap, mtu=mtu)
        cli.host_setup(t.name, host_ip, mtu)
        lib = stage_lib(os.path.join(work, "lib"))
        br = Bridge(t, "unix:" + os.path.join(work, "link.sock"), pcap=pcap)
        settings = {"LINK": br.spec, "IP": ip, "MTU": mtu,
                    "MAC": mac or getattr(b, "MAC", "02:00:00:00:00:02"),
                    "CONFIG": getattr(b, "CONFIG", {}),
                    "FEATURES": list(getattr(b, "FEATURES", ("tcp",)))}
        spath = os.path.join(work, "settings.json")
        with open(spath, "w") as f:
            json.dump(settings, f)
        env = dict(os.environ)
        env["MICROPYPATH"] = ":".join([shadow_dir(lib), lib] + [os.path.abspath(x) for x in libs]
                                      + [".frozen"])
        env["USTACK_MPY_SETTINGS"] = spath
        cmd = [micropython_exe(), "-X", "heapsize=" + (heapsize or heapsize_for(b)),
               os.path.join(lib, "ustack", "ports", "micropython", "mpyrun.py"),
               os.path.abspath(script)] + list(argv)
        # its own process group, as MpProcess: a terminal's Ctrl-C reaches this runner only,
        # which ends the program, the bridge and the TAP in order (no KeyboardInterrupt
        # trace from the child racing it)
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        end = None if timeout is None else time.monotonic() + timeout
        connected = False
        while p.poll() is None:
            if end is not None and time.monotonic() > end:
                p.kill()
                p.wait()
                return -9
            if not connected:
                if br.accept(0.1):
                    connected = True
                    br.start()
            else:
                try:
                    p.wait(0.2)
                except subprocess.TimeoutExpired:
                    pass
        return p.returncode
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        if br is not None:
            br.stop()
        if t is not None:
            t.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    """python -m ustack.ports.micropython.runtime run [--tap T --ip A/N --host-ip A/N
    --lib DIR ...] script.py [args...]"""
    import argparse
    from ustack.ports.cpython import cli
    ap = cli.one_line_errors(argparse.ArgumentParser(
        prog="python -m ustack.ports.micropython.runtime"), "ustack")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = cli.one_line_errors(sub.add_parser(
        "run", help="run a MicroPython program with ustack as its network"), "ustack run")
    r.add_argument("--tap", default=None, help="default: ustack0")
    r.add_argument("--ip", default="192.0.2.2/24", help="address/prefix")
    r.add_argument("--host-ip", default=None, help="address/prefix for the kernel side")
    r.add_argument("--mac", default=None, help="default: the board's")
    r.add_argument("--mtu", type=int, default=1500)
    r.add_argument("--board", default="unix")
    r.add_argument("--lib", action="append", default=[], help="a folder of MicroPython "
                   "modules to put on the path after ustack (repeatable)")
    r.add_argument("--heapsize", default=None)
    r.add_argument("--timeout", type=float, default=None)
    r.add_argument("--pcap", default=None)
    r.add_argument("script")
    r.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    # the same checks as `ustack up --runtime micropython`, before the TAP is made
    a.gateway = a.driver = None
    a.config = []
    v = cli.resolve(a)
    cli.check_link(v, "micropython")
    for d in a.lib:
        cli.check_dir("--lib", d)
    if not os.path.isfile(a.script):
        cli.refuse("run", a.script, "no such file")
    if a.timeout is not None:
        cli.check_seconds("--timeout", a.timeout)
    # Ctrl-C, SIGTERM (a test's teardown, a service manager) and SIGHUP (the terminal went
    # away) end the run without a traceback of ours: run_script's cleanup ends the
    # micropython child, the bridge and the TAP; exit status 128 + the signal's number
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    return run_script(a.script, a.args, tap=v["tap"], ip=v["ip"], host_ip=v["host_ip"],
                      mac=v["mac"], mtu=v["mtu"], board=a.board, libs=a.lib,
                      heapsize=a.heapsize, timeout=a.timeout, pcap=a.pcap)


if __name__ == "__main__":
    sys.exit(main())
