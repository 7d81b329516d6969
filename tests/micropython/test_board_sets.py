"""Each MCU board's module set alone (its build's freeze/ sources, nothing else of the core) runs
the core's specifications for what it ships under the MicroPython unix port, as smoltcp's CI
builds feature combinations: TCP, and per feature SACK recovery, undo, CUBIC, DHCP, DNS. A test
may only fail for a module the board leaves out (an ImportError naming it, or the config
error for a TCP_CC it lacks) - anything else is a core that needs an optional module."""
import json
import os
import shutil
import subprocess

import pytest

from tests.micropython.mpyhelp import needs_micropython, MPY, ROOT, HERE

pytestmark = [needs_micropython]

RUNNER = os.path.join(HERE, "unit_runner.py")
MCU_BOARDS = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500")
# test wires the specifications use (never shipped to a board)
TEST_SUPPORT = ("hal/loopback.py", "hal/impair.py")
SPECS = ("test_two_stacks.py", "test_tcp_segments.py", "test_tcp_parts.py",
         "test_tcp_hardening.py", "test_tcp_rfc_details.py", "test_tcp_behaviour.py",
         "test_wire.py", "test_checksum.py")
FEATURE_SPECS = {"sack": ("test_tcp_sack.py",), "undo": ("test_tcp_undo.py",),
                 "cubic": ("test_cc_cubic.py",), "dhcp": ("test_dhcp.py",),
                 "dns": ("test_dns.py",)}


def board_tree(board, out):
    """The board's freeze/ tree (its modules' sources) plus the test wires."""
    from ustack.ports.micropython.build import build
    rep = build(board, out)
    fz = os.path.join(rep["out"], "freeze")
    for rel in TEST_SUPPORT:
        shutil.copyfile(os.path.join(ROOT, rel), os.path.join(fz, "ustack", rel))
    return fz, rep


def _absent(msg, shipped):
    """The failure names a module this build left out, or a controller it lacks."""
    if "is not in this build" in msg:
        return True
    key = "no module named '"
    i = msg.find(key)
    if i < 0:
        return False
    mod = msg[i + len(key):].split("'")[0]
    rel = mod.replace(".", "/")[len("ustack/"):] + ".py"
    return mod.startswith("ustack.") and "ustack/" + rel[:-3] + ".mpy" not in shipped


@pytest.mark.parametrize("board", MCU_BOARDS)
def test_the_board_module_set_passes_the_specifications_of_what_it_ships(tmp_path, board):
    from ustack import boards
    feats = boards.load(board).FEATURES
    fz, rep = board_tree(board, str(tmp_path))
    files = list(SPECS)
    for f in feats:
        files += FEATURE_SPECS.get(f, ())
    got = []
    tail = ""
    for f in files:   # one file a run: the runner's fixtures are per module
        r = subprocess.run([MPY, "-X", "heapsize=8M", RUNNER, "--lib", fz, "--root", ROOT,
                            os.path.join(ROOT, "tests", "unit", f)],
                           capture_output=True, text=True, timeout=600, cwd=ROOT)
        got += [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        tail += r.stderr[-300:]
    passed = [d for d in got if d["outcome"] == "pass"]
    bad = [d for d in got if d["outcome"] != "pass" and not _absent(d["msg"], rep["sizes"])]
    print("%s (%s): %d passed, %d need a module it leaves out, in %d files" % (
        board, ",".join(feats), len(passed), len(got) - len(passed) - len(bad), len(files)))
    assert not bad, "\n".join("%s: %s" % (d["id"], d["msg"][:300]) for d in bad)
    assert len(passed) >= 150, tail
    # every file ran (an import error of a whole file is a failure above)
    ran = set(d["id"].split("::")[0] for d in passed)
    assert ran == set(files), set(files) - ran


_IMPORT_ALL = """
import sys
sys.path[:] = [%r]
bad = []
for m in %r:
    try:
        __import__(m)
    except Exception as e:
        bad.append((m, repr(e)))
print('BAD', repr(bad))
print('LOADED', ','.join(sorted(k for k in sys.modules if k.startswith('ustack'))))
for m in %r:
    try:
        __import__(m)
        print('PRESENT', m)
    except ImportError:
        pass
"""


@pytest.mark.parametrize("board", MCU_BOARDS)
def test_every_module_of_the_board_set_imports_alone_and_what_it_leaves_out_is_absent(tmp_path,
                                                                                      board):
    """issue 15: the board's build tree alone on sys.path (no checkout, no other module):
    every module it ships imports under MicroPython, and the optional modules of features it
    does not select - the offload code only CPython's TAP uses among them - are not there."""
    from ustack import boards
    from ustack.ports.micropython.build import FEATURE_MODULES
    from tests.micropython.wasmboard import board_modules
    feats = boards.load(board).FEATURES
    rep = build_only(board, str(tmp_path))
    fz = os.path.join(rep["out"], "freeze")
    mods = board_modules(rep)
    left_out = ["ustack." + rel[:-3].replace("/", ".") for f, rels in FEATURE_MODULES.items()
                if f not in feats for rel in rels if rel.endswith(".py")]
    assert "ustack.core.offload" in left_out and "ustack.core.wire.vnet" in left_out
    r = subprocess.run([MPY, "-X", "heapsize=8M", "-c", _IMPORT_ALL % (fz, mods, left_out)],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "BAD []", lines[0]
    loaded = lines[1][len("LOADED "):].split(",")
    assert sorted(loaded) == sorted(mods), set(loaded) ^ set(mods)
    assert [x for x in lines if x.startswith("PRESENT")] == []


def build_only(board, out):
    from ustack.ports.micropython.build import build
    return build(board, out)
