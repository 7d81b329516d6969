"""A board's stack under the 32-bit MicroPython (the WebAssembly port, ports/micropython/wasm.py)
with a CPython ustack as its peer: the board's own module set (its .mpy build, bytecode), its
settings and CONFIG, two TCP echo connections and a ping, then the same traffic with
micropython.heap_lock() held. Used by tests/micropython/test_wasm_boards.py and
benchmarks/memory.py.

    rep = run_board("w5500_evb_pico", lib, heapsize=152 * 1024)

rep: code (heap the imported modules hold), setup (the App: stack, pools, services),
data (everything live with both connections open, less the code and the test link's rings),
step_max (the most one call allocated: live + that is what a heap without a collector inside
the call needs), heap (the port's heap at the end: above heapsize means it had to grow),
echoed, pinged, locked_fails, locked_polls, link (the test link's rings, not the board's)."""
import collections
import os
import time

from ustack.hal import Driver

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mp_scripts", "wasm_board.py")
BOARD_IP = "192.0.2.2"
PEER_IP = "192.0.2.1"
PEER_MAC = b"\x02\x00\x00\x00\x00\x01"
DEPTH = 8   # wasm_board.DEPTH


class PeerLink(Driver):
    def __init__(self):
        self.mac = PEER_MAC
        self.mtu = 1500
        self.caps = 0
        self.rx = collections.deque()
        self.tx = collections.deque()

    def recv_into(self, buf):
        if not self.rx:
            return 0
        f = self.rx.popleft()
        buf[:len(f)] = f
        return len(f)

    def send(self, buf, n):
        self.tx.append(bytes(buf[:n]))
        return True


def board_modules(report):
    """The modules of a build report (build.build) as import names, packages first."""
    mods = []
    for rel in sorted(report["sizes"]):
        name = rel[:-4].replace("/", ".")
        if name.endswith(".__init__"):
            name = name[:-9]
        mods.append(name)
    return sorted(set(mods), key=lambda m: (m.count("."), m))


def import_order(names):
    """names ordered so that what a module imports at its top level (try blocks too) comes
    before it (its own heap cost is then what importing it adds)."""
    from ustack.ports.micropython.build import module_to_path
    names = list(names)
    done = []
    seen = set()

    def visit(m):
        if m in seen:
            return
        seen.add(m)
        parts = m.split(".")
        for i in range(2, len(parts)):
            visit(".".join(parts[:i]))  # the packages on the way down
        rel = module_to_path(m)
        if rel is not None:
            for dep in _top_imports(rel):
                if dep != m and dep in names:
                    visit(dep)
        done.append(m)
    for m in names:
        visit(m)
    return [m for m in done if m in names or m.count(".") <= 2]


def _top_imports(rel):
    """What the file imports when it is imported: its top level, try blocks included (a
    `try: import x / except ImportError` module loads with it, so it is visited first and
    its cost is its own)."""
    import ast
    from ustack.ports.micropython.build import ROOT
    with open(os.path.join(ROOT, rel)) as f:
        tree = ast.parse(f.read(), rel)
    out = set()

    def walk(body):
        for node in body:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.add(node.module)
                out.update(node.module + "." + a.name for a in node.names)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for h in node.handlers:
                    walk(h.body)
    walk(tree.body)
    return sorted(m for m in out if m.startswith("ustack."))


def driver_modules(board):
    """The board's chip driver as module names: imported as code (the scenario's frames go
    over the test link instead)."""
    from ustack.ports.micropython.build import DRIVER_MODULES
    if isinstance(board, str):
        from ustack import boards
        board = boards.load(board)
    return ["ustack." + r[:-3].replace("/", ".")
            for r in DRIVER_MODULES.get(getattr(board, "DRIVER", None), ())]


def feature_modules(board):
    """Every module of the board's optional features (build.FEATURE_MODULES and
    PORT_FEATURE_MODULES but "tcp", which the scenario loads by running): a board that has
    DHCP, DNS or the socket facade has them to be used."""
    from ustack.ports.micropython.build import FEATURE_MODULES, PORT_FEATURE_MODULES
    out = []
    for f in getattr(board, "FEATURES", ()) or ():
        if f == "tcp":
            continue
        for rel in FEATURE_MODULES.get(f, ()) + PORT_FEATURE_MODULES.get(f, ()):
            if rel.endswith(".py"):
                out.append("ustack." + rel[:-3].replace("/", "."))
    return out


def settings_for(board, extra=None):
    from ustack import boards
    d = boards.as_dict(boards.load(board) if isinstance(board, str) else board)
    s = dict((k, d[k]) for k in ("NAME", "MAC", "CONFIG", "FEATURES", "SERVE", "DNS",
                                 "TCP_PREALLOC", "SERVE_CONNS", "SERVE_BACKLOG") if k in d)
    s.update({"IP": BOARD_IP + "/24", "GATEWAY": None, "DHCP": False, "SERVE": "echo",
              "SEED": 7, "CONTROL_PORT": 0})
    if extra:
        s.update(extra)
    return s


class _Run:
    def __init__(self, wb):
        self.wb = wb
        self.live = 0
        self.step_max = 0
        self.step_max_at = None
        self.peak = 0
        self.calls = 0

    def live_now(self):
        """A full collection, then a call: self.live is what is live."""
        self.wb.collect()
        self.call("imp", "gc")

    def call(self, name, arg=""):
        r = self.wb.call(name, arg).split()
        self.calls += 1
        if name != "locked":
            a0, a1 = int(r[0]), int(r[1])
            self.live = a0
            if a1 > self.peak:
                self.peak = a1
            if a1 - a0 > self.step_max:
                self.step_max = a1 - a0
                self.step_max_at = "%s(%s) #%d" % (name, arg[:40], self.calls)
        return r


def dhcp_server(frame, board_mac):
    """The peer's DHCP server (RFC 2131 4.3.1, 4.3.2): an OFFER for a DISCOVER, an ACK for a
    REQUEST, of BOARD_IP with a 255.255.255.0 mask, PEER_IP as router and name server;
    None for any other frame."""
    from tests import frames as F
    from tests.unit.test_dhcp import bootp, opt, lease_opts  # noqa: F401
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 15) * 4
    u = 14 + ihl
    if frame[u + 2:u + 4] != b"\x00\x43":   # to port 67
        return None
    m = u + 8
    xid = frame[m + 4:m + 8]
    i = m + 240
    mtype = None
    while i + 1 < len(frame) and frame[i] != 255:
        if frame[i] == 0:
            i += 1
            continue
        if frame[i] == 53:
            mtype = frame[i + 2]
        i += 2 + frame[i + 1]
    reply = {1: 2, 3: 5}.get(mtype)   # DISCOVER -> OFFER, REQUEST -> ACK
    if reply is None:
        return None
    ip = bytes(int(x) for x in BOARD_IP.split("."))
    srv = bytes(int(x) for x in PEER_IP.split("."))
    options = opt(1, b"\xff\xff\xff\x00") + opt(3, srv) + opt(6, srv) + \
        opt(51, (3600).to_bytes(4, "big"))
    payload = bootp(xid, reply, yiaddr=ip, options=options, chaddr=board_mac, server_id=srv)
    bc = b"\xff" * 4
    return F.eth(b"\xff" * 6, PEER_MAC, 0x0800, F.ipv4(srv, bc, 17, F.udp(srv, bc, 67, 68,
                                                                        payload)))


def run_board(board, lib, heapsize, nbytes=16384, locked_bytes=16384, modules=None,
              extra=None, timeout=240, dhcp=False, idle=0):
    """The scenario above; `lib` the build's lib/ (ustack/...), `modules` what to import as
    the board's code (default: what a first run of the scenario imported, the chip driver
    and every module of the board's optional features, feature_modules); `dhcp`: the
    address from the peer's DHCP server; `idle`: more idle polls before data is measured."""
    import json
    from ustack.core.stack import Stack
    from ustack.core import socket as so
    from ustack.ports.micropython.wasm import WasmBoard
    settings = settings_for(board, extra)
    if dhcp:
        settings["DHCP"] = True   # the address from the peer's DHCP server (dhcp_server)
    if modules is None:
        # what the board imports running this: a first run tells, a second measures it
        modules = run_board(board, lib, heapsize, nbytes=1024, locked_bytes=1024, modules=(),
                            extra=extra, timeout=timeout, dhcp=dhcp)["loaded"]
        modules = import_order(modules + driver_modules(board) + feature_modules(board))
    rep = {"heapsize": heapsize, "modules": list(modules)}
    with WasmBoard(SCRIPT, [(lib, "/lib")], heapsize) as wb:
        r = _Run(wb)
        r.live_now()
        base = r.live
        rep["imports"] = {}
        prev = r.live
        for m in modules or ():
            r.call("imp", m)
            r.live_now()
            rep["imports"][m] = r.live - prev   # with what it imported first
            prev = r.live
        r.live_now()
        rep["code"] = r.live - base
        rep["import_step_max"] = r.step_max
        r.step_max = 0
        r.call("linkup", json.dumps(settings))
        r.live_now()
        rep["link"] = r.live - base - rep["code"]
        base += rep["link"]
        r.call("start", json.dumps(settings))
        r.live_now()
        rep["setup"] = r.live - base - rep["code"]
        peer = Stack()
        pl = PeerLink()
        peer.add_interface("eth0", pl, ip=PEER_IP + "/24")
        tcp = "tcp" in settings.get("FEATURES", ("tcp",))
        board_mac = bytes(int(x, 16) for x in settings["MAC"].split(":"))
        dhcp_seen = [0]
        fails = [0, 0]

        def turn(name="step"):
            peer.poll(int(time.monotonic() * 1000))
            k = 0
            while pl.tx and k < DEPTH:   # the board's ring takes DEPTH a call
                wb.send_frame(pl.tx.popleft())
                k += 1
            res = r.call(name, "1")
            if name == "locked":
                fails[0] += int(res[0])
                fails[1] += 1
            while wb.frames:
                f = wb.frames.pop(0)
                answer = dhcp_server(f, board_mac) if dhcp else None
                if answer is not None:
                    dhcp_seen[0] += 1
                    pl.tx.appendleft(answer)   # to the board with the next call
                else:
                    pl.rx.append(f)
            peer.poll(int(time.monotonic() * 1000))

        def echo(socks, n, name):
            data = [os.urandom(n) for _ in socks]
            sent = [0] * len(socks)
            got = [bytearray() for _ in socks]
            end = time.monotonic() + timeout
            while any(len(g) < n for g in got) and time.monotonic() < end:
                for i, s in enumerate(socks):
                    if sent[i] < n:
                        try:
                            sent[i] += s.send(data[i][sent[i]:sent[i] + 2048])
                        except OSError:
                            pass
                    try:
                        got[i] += s.recv(65536)
                    except OSError:
                        pass
                turn(name)
            return all(bytes(g) == d for g, d in zip(got, data))

        def ping(seq, name):
            p = peer.icmp.pinger(BOARD_IP)
            p.send(seq, peer.now)
            for _ in range(50):
                turn(name)
                if p.received:
                    break
            return p.received == 1

        if dhcp:
            # RFC 2131 and the RFC 5227 probes (1-2 s each) on the board's own clock
            end = time.monotonic() + 30
            got = "0"
            while time.monotonic() < end:
                turn()
                got = wb.call("bound")
                if got != "0":
                    break
            rep["dhcp_bound"] = wb.call("leased") if got != "0" else None
            rep["dhcp_exchanges"] = dhcp_seen[0]
        socks = []
        if tcp:
            for _ in range(2):
                s = peer.socket(so.AF_INET, so.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex((BOARD_IP, 7))
                socks.append(s)
            rep["echoed"] = echo(socks, nbytes, "step")
        rep["pinged"] = ping(1, "step")
        for _ in range(10 + idle):
            turn()   # the last ACKs delivered: both connections idle and open
        r.live_now()
        rep["data"] = r.live - base - rep["code"]
        rep["step_max"] = r.step_max
        rep["step_max_at"] = r.step_max_at
        # the steady state: the same traffic with the heap locked on the board
        if tcp:
            rep["locked_echoed"] = echo(socks, locked_bytes, "locked")
        rep["locked_pinged"] = ping(2, "locked")
        rep["locked_fails"] = fails[0]
        rep["locked_polls"] = fails[1]
        rep["counters"] = json.loads(wb.call("counters", "tcp.conn_established,"
                                              "svc.tcp7.accepted,tcp.no_memory"))
        rep["loaded"] = wb.call("loaded").split(",")
        for s in socks:
            s.close()
        rep["heap"] = wb.max_heap
        rep["heap0"] = wb.first_heap
        rep["calls"] = r.calls
        rep["peak"] = r.peak - base
    rep["grew"] = rep["heap"] > rep["heap0"]
    return rep


def wasm_lib(board, out, source=False, opt=None):
    """The board's module set (build.select_modules) for the wasm port in out/lib: bytecode
    .mpy files (no -march: the port has no native emitter), or the sources. checksum_viper
    stays out (checksum.py then uses its pure csum). opt: more mpy-cross arguments ("-O3"
    drops line numbers; default the board's MPY_OPT, as `invoke mpy` builds it).
    -> (lib, module names, .mpy bytes)."""
    if opt is None:
        level = getattr(board, "MPY_OPT", None)
        opt = ("-O%d" % int(level),) if level else ()
    import shutil
    from ustack.ports.micropython.build import select_modules, compile_one, source_name, \
        HERE as PM, ROOT
    mods = [r for r, _ in select_modules(board)[0] if not r.endswith("checksum_viper.py")]
    lib = os.path.join(out, "lib")
    if os.path.exists(lib):
        shutil.rmtree(lib)
    pkg = os.path.join(lib, "ustack")
    os.makedirs(os.path.join(pkg, "ports"))
    inits = [(os.path.join(PM, "ustack_init.py"), "__init__.py")]
    open(os.path.join(out, "empty.py"), "w").close()
    inits.append((os.path.join(out, "empty.py"), "ports/__init__.py"))
    total = 0
    for src, rel in [(os.path.join(ROOT, r), r) for r in mods] + inits:
        if source:
            dst = os.path.join(pkg, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(src, dst)
            continue
        dst = os.path.join(pkg, rel[:-3] + ".mpy")
        ok, msg = compile_one(src, dst, None, source_name(rel), extra=opt)
        if not ok:
            raise RuntimeError("mpy-cross %s: %s" % (rel, msg))
        total += os.path.getsize(dst)
    names = board_modules({"sizes": dict(("ustack/" + r[:-3] + ".mpy", 0) for r in mods)})
    return lib, names, total
