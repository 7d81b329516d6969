"""mpy-cross compiles every core module for the MCU targets; `invoke mpy` (build.build)
produces each board's tree with the right -march, its constants module and a size report;
the unix build's .mpy files import and run under the unix port."""
import glob
import json
import os
import subprocess

import pytest

from tests.micropython.mpyhelp import ROOT, needs_micropython, run_mpy

from ustack.ports.micropython.build import mpy_cross_exe, build, select_modules, summary

try:
    MPY_CROSS = mpy_cross_exe()
except FileNotFoundError:
    MPY_CROSS = None

needs_mpy_cross = pytest.mark.skipif(MPY_CROSS is None, reason="no mpy-cross")
CORE = sorted(p for p in glob.glob(os.path.join(ROOT, "core", "**", "*.py"), recursive=True))
BOARDS = ("unix", "w5500_evb_pico", "pico_enc28j60", "esp32_w5500")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """built(board): the board's build report, each board built once for this module (the
    tests only read the tree)."""
    done = {}

    def get(board):
        if board not in done:
            done[board] = build(board, str(tmp_path_factory.mktemp("mpy-" + board)))
        return done[board]
    return get


@needs_mpy_cross
@pytest.mark.parametrize("arch", ["armv6m", "xtensawin", "armv7emsp", "x64"])
def test_every_core_module_compiles(tmp_path, arch):
    bad = []
    for src in CORE:
        out = tmp_path / (os.path.relpath(src, ROOT).replace("/", "_") + ".mpy")
        r = subprocess.run([MPY_CROSS, "-march=" + arch, "-o", str(out), src],
                           capture_output=True, text=True)
        if r.returncode or not out.exists():
            bad.append("%s: %s" % (os.path.relpath(src, ROOT), (r.stdout + r.stderr).strip()))
    assert not bad, "\n".join(bad)
    assert len(CORE) >= 20


@needs_mpy_cross
@pytest.mark.parametrize("board", BOARDS)
def test_board_build_reports_its_size(built, board):
    rep = built(board)
    print(summary(rep))
    from ustack import boards
    b = boards.load(board)
    assert rep["arch"] == b.ARCH
    out = rep["out"]
    for f in ("main.py", "board_cfg.py", "manifest.json", "lib/ustack/__init__.mpy",
              "lib/ustack/core/stack.mpy", "lib/ustack/core/checksum_viper.mpy",
              "lib/ustack/ports/micropython/app.mpy"):
        assert os.path.exists(os.path.join(out, f)), f
    assert rep["mpy_bytes"] == sum(rep["sizes"].values()) > 20000
    assert json.load(open(os.path.join(out, "manifest.json")))["mpy_bytes"] == rep["mpy_bytes"]
    # the driver ships, CPython-only modules never do
    names = set(rep["sizes"])
    assert not any(n.endswith(("/build.mpy", "/deploy.mpy", "/runtime.mpy", "/stage.mpy"))
                   for n in names)
    drv = {"streamlink": "ports/micropython/streamlink", "w5500": "hal/w5500",
           "enc28j60": "hal/enc28j60"}[b.DRIVER]
    assert "ustack/%s.mpy" % drv in names
    if "tcp" in b.FEATURES:
        assert "ustack/core/tcp/proto.mpy" in names
    # a .mpy header: 'M', version 6, feature flags carry the arch for native code
    with open(os.path.join(out, "lib/ustack/core/checksum_viper.mpy"), "rb") as f:
        hdr = f.read(4)
    assert hdr[0] == ord("M") and hdr[1] == 6
    # board_cfg.py is the board's data
    ns = {}
    exec(open(os.path.join(out, "board_cfg.py")).read(), ns)
    assert ns["DRIVER"] == b.DRIVER and ns["CONFIG"] == b.CONFIG


def test_feature_gating_drops_modules():
    class Tiny:
        NAME = "tiny"
        ARCH = "armv6m"
        DRIVER = "enc28j60"
        FEATURES = ()
    mods, notes, missing = select_modules(Tiny)
    rels = [m for m, _ in mods]
    assert "core/stack.py" in rels and "hal/enc28j60.py" in rels and "hal/spi.py" in rels
    assert not any(r.startswith("core/tcp/") for r in rels), rels
    assert "core/raw.py" not in rels
    assert "ports/micropython/streamlink.py" not in rels


def test_ipv6_modules_ship_only_with_the_ipv6_feature():
    class V4:
        NAME = "v4"
        ARCH = "armv6m"
        DRIVER = "w5500"
        FEATURES = ("tcp",)

    class V6(V4):
        FEATURES = ("tcp", "ipv6")
    six = ("core/addr6.py", "core/nd.py", "core/slaac.py", "core/mld.py", "core/wire/ipv6.py", "core/reass6.py",
           "core/wire/icmp6.py")
    v4 = [m for m, _ in select_modules(V4)[0]]
    v6 = [m for m, _ in select_modules(V6)[0]]
    assert not any(m in v4 for m in six), v4
    assert all(m in v6 for m in six), v6


def test_the_dhcp_board_setting_ships_the_dhcp_client_and_only_then():
    class Static:
        NAME = "static"
        ARCH = "armv6m"
        DRIVER = "w5500"
        FEATURES = ("tcp",)

    class Leased(Static):
        DHCP = True
    static = [m for m, _ in select_modules(Static)[0]]
    leased = [m for m, _ in select_modules(Leased)[0]]
    assert "core/dhcp.py" not in static and "core/wire/dhcp.py" not in static
    assert "core/dhcp.py" in leased and "core/wire/dhcp.py" in leased


@needs_mpy_cross
def test_the_socket_feature_ships_the_network_and_socket_facades_for_an_mcu(tmp_path):
    class Board:
        NAME = "w5500-socket"
        ARCH = "armv6m"
        DRIVER = "w5500"
        FEATURES = ("tcp", "socket")
    mods, notes, missing = select_modules(Board)
    rels = [m for m, _ in mods]
    assert "ports/micropython/netif.py" in rels and "ports/micropython/usock.py" in rels
    assert "ports/micropython/thirdparty.py" not in rels
    shadow = glob.glob(os.path.join(ROOT, "ports", "micropython", "shadow", "*.py"))
    bad = []
    for src in [os.path.join(ROOT, r) for r in ("ports/micropython/netif.py",
                                                 "ports/micropython/usock.py")] + shadow:
        out = tmp_path / (os.path.basename(src) + ".mpy")
        r = subprocess.run([MPY_CROSS, "-march=armv6m", "-o", str(out), src],
                           capture_output=True, text=True)
        if r.returncode:
            bad.append(src + ": " + r.stdout + r.stderr)
    assert not bad and len(shadow) == 2, bad


@needs_micropython
@needs_mpy_cross
def test_unix_build_runs_from_mpy_files(built):
    """The x64 .mpy tree (viper as machine code) imports and moves traffic: two stacks ping
    and exchange UDP, checksums by the compiled viper module."""
    rep = built("unix")
    lib = os.path.join(rep["out"], "lib")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ustack.core import checksum, checksum_viper\n"
            "print(checksum.__file__, checksum.csum is checksum_viper.csum)\n"
            "from ustack.core.stack import Stack\n"
            "sys.path.insert(1, %r)\n"
            "from memlink import pair\n"
            "la, lb = pair(b'\\x02\\0\\0\\0\\0\\x0a', b'\\x02\\0\\0\\0\\0\\x0b')\n"
            "a = Stack(); b = Stack()\n"
            "a.add_interface('a0', la, ip='192.0.2.10/24')\n"
            "b.add_interface('b0', lb, ip='192.0.2.11/24')\n"
            "p = a.icmp.pinger('192.0.2.11')\n"
            "for i in range(5):\n"
            "    p.send(i, i)\n"
            "    for _ in range(4): a.poll(i); b.poll(i)\n"
            "print('pings', p.received)\n") % (lib, os.path.join(ROOT, "tests", "micropython",
                                                                 "mp_scripts"))
    r = run_mpy(["-c", code])
    assert r.returncode == 0, r.stdout + r.stderr
    assert ".mpy True" in r.stdout and "pings 5" in r.stdout, r.stdout


@needs_micropython
@needs_mpy_cross
@pytest.mark.parametrize("board", BOARDS)
def test_the_board_module_set_is_complete(built, board):
    """The modules chosen for a board are all it needs: with only them on sys.path (the
    freeze/ sources), MicroPython builds the board's stack from board_cfg and moves a ping
    and a TCP connection between two such stacks (the SPI driver itself is only imported)."""
    rep = built(board)
    fz = os.path.join(rep["out"], "freeze")
    code = (
        "import sys\n"
        "sys.path[:] = [%r, %r]\n"
        "import board_cfg\n"
        "from ustack.ports.micropython import appinit as app\n"
        "from memlink import pair\n"
        "la, lb = pair(b'\\x02\\0\\0\\0\\0\\x0a', b'\\x02\\0\\0\\0\\0\\x0b')\n"
        "s = app.settings_from(board_cfg, [])\n"
        "a = app.make_stack(dict(s, IP='192.0.2.10/24'), la)\n"
        "b = app.make_stack(dict(s, IP='192.0.2.11/24'), lb)\n"
        "print('tcp', a.tcp is not None)\n"
        "drv = board_cfg.DRIVER\n"
        "if drv != 'streamlink':\n"
        "    __import__('ustack.hal.' + drv)\n"
        "p = a.icmp.pinger('192.0.2.11')\n"
        "for i in range(3):\n"
        "    p.send(i, i)\n"
        "    for _ in range(4): a.poll(i); b.poll(i)\n"
        "print('pings', p.received)\n"
        "if a.tcp is not None:\n"
        "    from ustack.core import socket as so\n"
        "    l = b.socket(so.AF_INET, so.SOCK_STREAM); l.bind(('', 7)); l.listen(); l.setblocking(False)\n"
        "    c = a.socket(so.AF_INET, so.SOCK_STREAM); c.setblocking(False)\n"
        "    c.connect_ex(('192.0.2.11', 7))\n"
        "    for t in range(10, 30): a.poll(t); b.poll(t)\n"
        "    print('accepted', len(l.acc_q))\n"
    ) % (fz, os.path.join(ROOT, "tests", "micropython", "mp_scripts"))
    r = run_mpy(["-c", code])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pings 3" in r.stdout, r.stdout
    from ustack import boards
    if "tcp" in boards.load(board).FEATURES:
        assert "tcp True" in r.stdout and "accepted 1" in r.stdout, r.stdout


@needs_mpy_cross
def test_an_optimisation_level_makes_the_build_smaller_and_is_reported(tmp_path):
    """mpy-cross -O3 (no line numbers): the board's MPY_OPT (the MCU boards set 3: issue 15)
    or --opt (0: none)."""
    plain = build("w5500_evb_pico", str(tmp_path / "plain"), opt=0)
    small = build("w5500_evb_pico", str(tmp_path / "o3"))   # the board's MPY_OPT = 3
    assert plain["opt"] == 0 and small["opt"] == 3
    assert small["mpy_bytes"] < plain["mpy_bytes"] * 0.97, (small["mpy_bytes"],
                                                           plain["mpy_bytes"])
    assert json.load(open(os.path.join(small["out"], "manifest.json")))["opt"] == 3
