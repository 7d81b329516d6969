"""The MicroPython application: build the stack from a board config, start the services, drive
the poll loop. main.py calls `main(board_cfg, argv)`; it runs unchanged on CPython (host tests).

Settings are the board module's upper-case names (see boards/unix.py), overridden by a JSON
file given as `--settings PATH` (what `ustack up --runtime micropython` writes) and by
`KEY=VALUE` arguments:

    NAME DRIVER LINK IP GATEWAY MAC MTU CONFIG FEATURES SERVE BUS PINS
    TCP_PREALLOC    connections whose TCP rings are allocated at start (default
                    min(TCP_MAX_CONNS, 4)): on a small heap, a connection then never needs
                    a large contiguous block once the heap is fragmented
    STATS_INTERVAL  seconds between counter lines on stdout (0 = only at exit)
    CONTROL_PORT    UDP port of the test control service (0 = off), see control.py
    CONTROL_PEER    the one IPv4 address Control answers (None: any); others are dropped,
                    counted as ctl.peer_refused (`ustack up --runtime micropython` sets the
                    host's address: the port changes routes)
    DURATION        stop by itself after this many seconds (0 = never)
    HTTP_ROOT       directory the http service serves (None: a built-in page and /bytes/N)
    SERVE_CONNS     connections each TCP service serves at once (default min(TCP_MAX_CONNS, 4))
    SERVE_BACKLOG   each TCP service's listen backlog (default: the connections whose rings
                    fit in half the free heap, at least SERVE_CONNS, at most TCP_BACKLOG);
                    established connections waiting there hold their rings too
    DHCP            True: lease the address, router and DNS servers from DHCP (IP and
                    GATEWAY unused); `up` is said once the lease is bound
    DHCP_HOSTNAME   the host name DHCP requests carry (RFC 2132 3.14; default none)
    DHCP_LEASE_FILE a file that remembers the lease (ports/micropython/leasefile.py): a
                    restart asks for the same address first (INIT-REBOOT, RFC 2131 3.2)
    IP6             IPv6 addresses 'ADDR/PREFIX' of the first link (config IPV6 on: the
                    link-local address is there anyway); `up` waits for their DAD
    LINKS           more links, eth1, eth2, ...: [{"LINK", "IP", "MAC", "MTU", "IP6"}], each
                    a StreamLink of its own (the runtime bridges one TAP per link)

Output lines (stdout), for the runtime that started us:
    up ip=... mac=... serve=...       the stack is configured and polling (with DHCP:
                                      bound, and dhcp=SERVER lease=Ns router= dns= domain=)
    counters {json}                   periodically and at exit
    heap-lock-failure ...             an allocation happened while the heap was locked
    link down: ... / link up          the driver's link changed (or is down once `up` is said)
    dhcp: no lease yet after 5 s (..) no DHCP server answered (or the link is down)

The loop allocates nothing in steady state (HAL-NOTES 1.1): it polls with ipoll, the
services move data through preallocated buffers, and nothing raises on the fast path. That
is what the Control service's `lock` command checks: it holds micropython.heap_lock() until
`unlock`, and any allocation in between raises MemoryError, counted and reported.
"""
import sys

from ustack.ports.micropython import compat
from ustack.core import clock
from ustack.core import socket as so
from ustack.core.compat import forget

# `up` waits at most this long for DAD of the IPv6 addresses (RFC 4862 5.4: a random delay
# of up to 1 s, then DupAddrDetectTransmits x RetransTimer), as the CPython runtime's ready
DAD_WAIT_MS = 4000
FAIL_BACKOFF_MS = 20  # after poll() or a service raised
NO_LEASE_SAY_MS = 5000  # RFC 2131 4.1: DISCOVER goes again after ~4 s; by 5 s two went unanswered


def prealloc_rings(stack, conns):
    """Hand `conns` connections' worth of send and receive rings, and their buffers, to the
    TCP ring pool now, while the heap is still in one piece (the pool allocates on a miss)."""
    tcp = stack.tcp
    if tcp is None or conns <= 0 or not hasattr(tcp, "rings"):
        return 0
    pool = tcp.rings
    sizes = (tcp.snd_buf, tcp.rcv_buf)
    want = conns * 2
    if pool.keep < want:
        pool.keep = want
    got = []
    for i in range(want):
        r = pool.get(sizes[i & 1])
        r.ensure(pool)
        got.append(r)
    for r in got:
        pool.put(r)  # the ring and its buffer, both kept for the next connection
    return want


# ---- services ---------------------------------------------------------------------------------
class UdpService:
    """echo (RFC 862) or discard (RFC 863) over UDP, allocation-free: each datagram is copied
    once into a preallocated buffer and, for echo, sent back to its source."""

    def __init__(self, stack, port, reply, bufsize=1500, family=so.AF_INET):
        self.stack = stack
        self.sock = s = stack.socket(family, so.SOCK_DGRAM)
        if family == so.AF_INET6:  # beside the IPv4 one on the same port (as on Linux)
            s.setsockopt(so.SOL_SOCKET, so.SO_REUSEADDR, 1)
            s.setsockopt(so.IPPROTO_IPV6, so.IPV6_V6ONLY, 1)
        s.bind(("", port))
        s.setblocking(False)
        self.reply = reply
        self.buf = bytearray(bufsize)
        self.peer = bytearray(16 if family == so.AF_INET6 else 4)
        self.count = 0
        self.bytes = 0
        self.errors = 0

    def step(self):
        s = self.sock
        while s.qlen:
            sport = s.peek_source(self.peer)  # the datagram's source, nothing allocated
            n = s.recv_into(self.buf)
            self.count += 1
            self.bytes += n
            if self.reply:
                err = self.stack.udp.output(s.local_ip, s.local_port, self.peer, sport,
                                            self.buf, n)
                if err:
                    self.errors += 1

    def close(self):
        self.sock.close()


def _dumps(d):
    import json
    return json.dumps(d)


def gc_threshold():
    """Collect after a quarter of the free heap has been allocated (MicroPython's advice),
    not only when the heap is full: connection setup churns buffers, and a heap left full of
    garbage makes every later allocation search it (seen as a 5x slower UDP echo after a
    burst of TCP connections)."""
    try:
        import gc
        gc.collect()
        gc.threshold(gc.mem_free() // 4 + gc.mem_alloc())
    except (ImportError, AttributeError):
        pass


# ---- the loop ---------------------------------------------------------------------------------
class App:
    def __init__(self, settings, driver=None):
        """The stack and services of these settings (appinit.DEFAULTS and the board's); on
        `driver` if given (a test's link), else on the one DRIVER names."""
        self.s = settings
        self.mac = None
        self.services = []
        self.running = True
        self.locked = False
        self.lock_failures = 0
        self.locked_polls = 0
        self.lock_started = 0
        self.polls = 0
        self.last_failure = None
        self.heap_code = 0        # heap taken by the imported code (unix port: not frozen)
        self.heap_setup = 0       # heap the stack, its services and pools took on top
        self.poller = compat.Poller()
        self.link_said = None     # the link state the console was last told (say_link)
        self.busy_poll = False
        self.started = ()
        appinit_call("setup", self, settings, driver)
        pre = settings["TCP_PREALLOC"]
        if pre is None:
            pre = min(self.stack.config["TCP_MAX_CONNS"], 4)
        # the rings (the start's largest blocks) while appinit is not in the heap
        self.rings = prealloc_rings(self.stack, pre)
        appinit_call("serve", self, settings)

    def lock(self):
        compat.heap_lock()
        self.locked = True
        self.lock_started = self.polls

    def unlock(self):
        if self.locked:
            compat.heap_unlock()
            self.locked = False
            self.locked_polls += self.polls - self.lock_started

    def lock_report(self):
        d = {"failures": self.lock_failures, "locked_polls": self.locked_polls,
             "mem": compat.mem_info()}
        if self.last_failure is not None:
            d["last_failure"] = repr(self.last_failure)
        return _dumps(d)

    def counters(self):
        c = self.stack.counters()
        drv = self.driver
        for k in ("rx_frames", "tx_frames", "rx_oversize", "tx_errors"):
            v = getattr(drv, k, 0)
            if v:
                c["link." + k] = v
            for i in self.stack.ifaces[1:]:  # the LINKS' streams: link.eth1.rx_frames, ...
                v = getattr(i.driver, k, 0)
                if v:
                    c["link.%s.%s" % (i.name, k)] = v
        if hasattr(drv, "report"):
            drv.report(c)
        for svc in self.services:
            if isinstance(svc, UdpService) and svc.count:
                k = "svc.udp%d.datagrams" % svc.sock.local_port  # both families together
                c[k] = c.get(k, 0) + svc.count
            elif hasattr(svc, "report"):
                svc.report(c)
        if self.lock_failures:
            c["heap_lock.failures"] = self.lock_failures
        if self.heap_code:
            c["mem.code"] = self.heap_code
            c["mem.setup"] = self.heap_setup
        m = compat.mem_info()
        for k in m:
            c["mem." + k] = m[k]
        return c

    def counters_json(self):
        return _dumps(self.counters())

    def say(self, line):
        sys.stdout.write(line + "\n")
        if hasattr(sys.stdout, "flush"):
            sys.stdout.flush()
    def say_up(self):
        appinit_call("say_up", self)

    def tentative(self):
        """An IPv6 address of ours still under DAD (given with IP6: `up` names usable ones)."""
        v6 = self.stack.ipv6
        if v6 is None or not (self.s.get("IP6") or any(
                d.get("IP6") for d in self.s.get("LINKS") or ())):
            return False
        for a, p, f in v6.addresses():
            if f == "tentative":
                return True
        return False

    def say_link(self):
        """One line when the link goes down (or is down once `up` is said) and when it comes
        back: at a board's console, what tells "no cable" from "no answer"."""
        if self.link_up is None:
            return
        up = self.link_up()
        if up != self.link_said:
            if not up:
                self.say("link down: no carrier on eth0 (the cable, or the port at its other end)")
            elif self.link_said is not None:
                self.say("link up")
            self.link_said = up

    def run(self):
        gc_threshold()
        # with DHCP, `up` waits for the lease (the loop says it once bound), with IP6 for DAD
        t0 = clock.now_ms()
        said = self.stack.dhcp is None and not self.tentative()
        if said:
            self.say_up()
        interval = int(self.s["STATS_INTERVAL"] * 1000)
        duration = int(self.s["DURATION"] * 1000)
        last_stats = t0
        waited = False  # the no-lease line said
        try:
            while self.running:
                try:
                    self.step()
                except MemoryError as e:
                    if not self.locked:
                        self.failed(e)
                        continue  # (the loop's checks below run on the next turn)
                    self.unlock()
                    self.lock_failures += 1
                    self.last_failure = e
                    self.say("heap-lock-failure %r" % (e,))
                    compat.print_exception(e)
                except Exception as e:
                    self.failed(e)
                if not self.locked:
                    if not said and (self.stack.dhcp is None or self.stack.dhcp.bound()) and (
                            not self.tentative() or clock.now_ms() - t0 > DAD_WAIT_MS):
                        said = True
                        self.say_up()
                    now = clock.now_ms()
                    if interval and now - last_stats >= interval:
                        last_stats = now
                        self.say("counters " + self.counters_json())
                    if duration and now - t0 >= duration:
                        break
                    if self.driver_gone():
                        self.say("link closed")
                        break
                    if said:
                        self.say_link()
                    elif not waited and now - t0 >= NO_LEASE_SAY_MS:
                        waited = True
                        self.say("dhcp: no lease yet after %d s (%s)" % (
                            NO_LEASE_SAY_MS // 1000, "link up: no DHCP server answered"
                            if self.link_up is None or self.link_up() else "link down"))
        except KeyboardInterrupt:
            pass
        finally:
            self.unlock()
        d = self.stack.dhcp
        if d is not None and d.bound():
            # RFC 2131 3.1 (8): the lease goes back while the link still carries frames out
            # (the host half-closes it), and the exit counters show it
            d.release()
            self.stack.poll(clock.now_ms())
        self.say("counters " + self.counters_json())
        self.stack.close()

    def failed(self, e):
        """poll() or a service raised: the loop lives on. The stack counts it
        (stack.exceptions), logs one line and takes back the buffers of the frame under way;
        a short pause keeps a failure that repeats from spinning."""
        self.stack.poll_failed(e)
        clock.sleep_ms(FAIL_BACKOFF_MS)

    def driver_gone(self):
        for i in self.stack.ifaces:  # the runtime closes every link's stream to stop us
            if getattr(i.driver, "eof", False):
                return True
        return False

    def step(self):
        st = self.stack
        now = clock.now_ms()
        nd = st.poll(now)
        for svc in self.services:
            svc.step()
        self.polls += 1
        # wait for the link (or the next timer); a board without a pollable link spins
        if self.busy_poll:
            return
        if self.rx_pending is not None and self.rx_pending():
            return
        w = 100
        if st.kicked or nd:
            st.kicked = False
            nd = st.next_timer
            if nd:
                w = nd - clock.now_ms()
                if w < 0:
                    w = 0
                elif w > 100:
                    w = 100
        self.poller.wait(w)

def appinit_call(name, *args):
    """appinit.<name>(*args): start-up code, imported for the call and forgotten after it on
    MicroPython (its bytecode is not kept in the heap)."""
    from ustack.ports.micropython import appinit
    try:
        return getattr(appinit, name)(*args)
    finally:
        forget("ustack.ports.micropython.appinit")


def _heap_used():
    try:
        import gc
        gc.collect()
        return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    except ImportError:
        return 0


def main(board=None, argv=None):
    if argv is None:
        argv = sys.argv[1:] if hasattr(sys, "argv") else []
    s = appinit_call("settings_from", board, argv)
    # the code first (so the report can tell code from data), then the stack
    import ustack.core.stack  # noqa: F401
    if "tcp" in (s["FEATURES"] or ()):
        try:
            # the compiler's garbage from the modules so far goes before TCP's big ones are
            # compiled: a heap of scattered holes cannot hold their larger blocks
            _heap_used()
            import ustack.core.tcp.proto  # noqa: F401
            import ustack.core.tcp.socket  # noqa: F401
            import ustack.ports.micropython.tcpserv  # noqa: F401
            if "http" in str(s["SERVE"]):
                import ustack.ports.micropython.httpserv  # noqa: F401
        except ImportError:
            pass
    if s["CONTROL_PORT"]:
        import ustack.ports.micropython.control  # noqa: F401 - measured as code
    if s["DRIVER"] in ("streamlink", "sim-enc28j60", "sim-w5500"):
        import ustack.ports.micropython.streamlink  # noqa: F401 - measured as code
    code = _heap_used()
    try:
        app = App(s)
    except MemoryError:
        sys.stdout.write("memory: the stack does not fit (code %d bytes)\n" % code)
        raise
    app.heap_code = code
    app.heap_setup = _heap_used() - code
    app.run()
    return app
