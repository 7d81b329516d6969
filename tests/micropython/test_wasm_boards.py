"""Each MCU board's own module set on a 32-bit MicroPython (MicroPython's WebAssembly port under
Node.js, ports/micropython/wasm.py): loaded from bytecode .mpy files, the board's settings and
CONFIG, UDP and TCP echo, two TCP connections from a CPython peer and a ping, then the same with
micropython.heap_lock() held (tests/micropython/wasmboard.py). The figures are in
benchmarks/memory.md; the bounds here keep them from creeping up."""
import shutil

import pytest

from tests.micropython.wasmboard import wasm_lib, run_board

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="no node/npm (apt-get install nodejs npm)")
pytestmark = [needs_node]

WASM_BOARDS = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500")
BIG = 4 << 20
KB = 1024
# issue 15: "the data part alone (buffers, tables, two connections) stays under 64 KB on
# every MCU board"
DATA_MAX = 64 * KB
# code: what the board imports running this, 32-bit, measured 2026-12-06 with 4 % to grow:
# 206.8/208.6/171.9 KB before, 221.1/222.9/186.1 KB after the two-family network layer and
# the IPv6 plumbing in the always-shipped modules (stack, socket, udp, tcp) landed (issue 15
# should put that plumbing behind the ipv6 feature); none of these fits its board's heap from
# .mpy files yet: freeze them (`invoke mpy` / `invoke freeze`). 231.7/233.5/196.7 KB after
# session 5's always-shipped additions (offload capabilities, the route cache, the path MTU
# cache, the RIP and ACK-burst hooks): the bounds follow with 1 % to grow, the fit stays open.
# Issue 15, session 6: 232.2/234.0/197.2 KB measured before, 214.4/216.0/181.4 KB after the
# boards' mpy-cross -O3, the offload code and the control and HTTP services in modules only
# their users import (benchmarks/memory.md); the bounds are that + 1 %, still over the
# targets (190 KB * 80 % = 152 KB for code and data on a Pico, 110 KB on the ESP32). After
# merging the session's IPv6 host work, SACK on data segments, byte counting and limited
# transmit into the always-shipped TCP and IPv6 modules: 219.2/220.8/186.2 KB. Session 8:
# 220.3/221.9/187.5 KB before, 207.6/209.2/174.8 KB after config's checks (config_check.py)
# and the app's start (appinit.py) became modules run once and forgotten (core/compat.forget)
# and each .mpy names its module as its source (build.source_name: no path qstr); the
# forgotten modules' names stay as qstrs, so the data rose 1.4 KB: code + data 11.1-11.3 KB
# less per board. Session 9 (TLP and recovery fixes, ring growth within TCP_MEM, services
# answering before the burst's ACKs): 211.9/213.5/179.0 KB. Session 10 (software GSO, the
# lazily made congestion controller, TIME-WAIT recycling, UDP echo in one call): 213.6/215.2/
# 180.8 KB
CODE_MAX = {"w5500_evb_pico": int(215.7 * KB), "pico_enc28j60": int(217.4 * KB),
            "esp32_w5500": int(182.6 * KB)}


@pytest.fixture(scope="module")
def wasm_port():
    from ustack.ports.micropython.wasm import install
    return install()   # npm install into build/wasm (once; a failure says npm's reason)


def _board(name):
    from ustack import boards
    return boards.load(name)


def _run(board, tmp_path, heap):
    b = _board(board)
    lib, names, mpy = wasm_lib(b, str(tmp_path / "w"))
    return run_board(b, lib, heap, extra={"FEATURES": list(b.FEATURES),
                                          "CONFIG": dict(b.CONFIG)})


def _ran(rep):
    assert rep["echoed"] and rep["pinged"], rep
    assert rep["counters"]["tcp.conn_established"] == 2, rep["counters"]
    assert rep["counters"]["svc.tcp7.accepted"] == 2, rep["counters"]
    # HAL-NOTES 1.1: the steady state allocates nothing - TCP echo and ping with the heap locked
    assert rep["locked_echoed"] and rep["locked_pinged"], rep
    assert rep["locked_fails"] == 0 and rep["locked_polls"] > 0, rep


def test_the_wasm_port_is_a_32_bit_micropython_that_loads_bytecode_mpy(wasm_port, tmp_path):
    from ustack.ports.micropython.build import compile_one
    from ustack.ports.micropython.wasm import run
    mod = tmp_path / "lib" / "probe.py"
    mod.parent.mkdir()
    mod.write_text("X = 42\n")
    ok, msg = compile_one(str(mod), str(tmp_path / "lib" / "probe.mpy"))
    assert ok, msg
    mod.unlink()
    script = tmp_path / "main.py"
    script.write_text("import sys, gc, micropython, probe\n"
                      "print(sys.maxsize, probe.X, probe.__file__)\n"
                      "micropython.heap_lock()\n"
                      "try:\n    x = bytearray(8)\nexcept MemoryError:\n    print('locked')\n"
                      "micropython.heap_unlock()\n")
    r = run(str(script), [(str(tmp_path / "lib"), "/lib")], heapsize=64 * KB)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split()[:3] == [str(2 ** 31 - 1), "42", "/lib/probe.mpy"], r.stdout
    assert "locked" in r.stdout


@pytest.mark.parametrize("board", WASM_BOARDS)
def test_the_board_module_set_runs_from_mpy_files_on_32_bit_micropython(wasm_port, tmp_path,
                                                                         board):
    rep = _run(board, tmp_path, BIG)
    print("%s 32-bit: code %d B, data %d B, peak %d B, %d calls" % (
        board, rep["code"], rep["data"], rep["peak"], rep["calls"]))
    _ran(rep)
    assert rep["data"] <= DATA_MAX, rep["data"]
    assert rep["code"] <= CODE_MAX[board], rep["code"]
    # the modules a board leaves out are not there: none was imported
    b = _board(board)
    loaded = set(rep["loaded"])
    if "undo" not in b.FEATURES:
        assert "ustack.core.tcp.undo" not in loaded
        assert "ustack.core.tcp.undo_off" in loaded
    if "cubic" not in b.FEATURES:
        assert "ustack.core.tcp.cc_cubic" not in loaded
    assert ("ustack.core.tcp.scoreboard" in loaded) == ("sack" in b.FEATURES)
    # issue 15: what only a TAP with offloads, the control port or an HTTP board uses
    for m in ("ustack.core.offload", "ustack.core.wire.vnet", "ustack.ports.micropython.control",
              "ustack.ports.micropython.httpserv"):
        assert m not in loaded, m
    # code run once at start is imported, run and forgotten (core/compat.forget): not kept
    for m in ("ustack.core.config_check", "ustack.ports.micropython.appinit"):
        assert m not in loaded, m


@pytest.mark.parametrize("board", ["pico_enc28j60"])
def test_a_limited_heap_is_a_real_limit_on_the_wasm_port(wasm_port, tmp_path, board):
    """The port grows its heap instead of failing (it cannot collect inside a call): a run in
    a heap of the measured peak plus the test link's rings (plus the allocation table's 2.3 %
    and 16 KB for fragmentation, as bisection found) never grows it, one in half of it
    must - so 'fits' in benchmarks/memory.md means what it says."""
    big = _run(board, tmp_path, BIG)
    fit = _run(board, tmp_path, int((big["peak"] + big["link"]) * 1.03) + 20 * KB)
    _ran(fit)
    assert not fit["grew"], (fit["heap0"], fit["heap"])
    half = _run(board, tmp_path, (big["peak"] + big["link"]) // 2)
    assert half["grew"], (half["heap0"], half["heap"])


@pytest.mark.parametrize("board", ["w5500_evb_pico"])
def test_a_dhcp_board_leases_its_address_then_serves_on_32_bit_micropython(wasm_port, tmp_path,
                                                                          board):
    """RFC 2131: DISCOVER, OFFER, REQUEST, ACK with the peer's server (wasmboard.dhcp_server),
    the RFC 5227 probes on the board's clock, then the two echo connections and the ping on
    the leased address, and the heap-locked steady state."""
    b = _board(board)
    assert "dhcp" in b.FEATURES
    lib, names, mpy = wasm_lib(b, str(tmp_path / "w"))
    rep = run_board(b, lib, BIG, extra={"FEATURES": list(b.FEATURES),
                                        "CONFIG": dict(b.CONFIG)}, dhcp=True)
    assert rep["dhcp_bound"] == "192.0.2.2" and rep["dhcp_exchanges"] == 2, rep
    _ran(rep)
    assert "ustack.core.dhcp" in rep["loaded"]
    assert rep["data"] <= DATA_MAX, rep["data"]
