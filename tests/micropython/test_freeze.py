"""`invoke freeze --board B --micropython DIR` (ports/micropython/freeze.py): the manifest it
writes freezes exactly the board's module set and reads as MicroPython's manifest loader
reads it; it runs mpy-cross's and the port's make with MicroPython's board name and
FROZEN_MANIFEST; mistakes end in one line naming the flag.

MicroPython's sources are not on this machine: the checkout here is a stand-in whose
Makefiles record the variables make was given (the commands are make's own)."""
import os
import subprocess
import sys

import pytest

from tests.micropython.mpyhelp import ROOT
from ustack.ports.micropython import freeze as fz
from ustack.ports.micropython.build import select_modules

MAKEFILE = "all:\n\t@echo \"$(CURDIR) BOARD=$(BOARD) FROZEN_MANIFEST=$(FROZEN_MANIFEST) " \
           "GOAL=$(MAKECMDGOALS)\" >> $(LOG)\nsubmodules:\n\t@echo \"$(CURDIR) submodules " \
           "BOARD=$(BOARD)\" >> $(LOG)\n"


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    mp = tmp_path / "micropython"
    (mp / "py").mkdir(parents=True)
    (mp / "py" / "mpconfig.h").write_text("/* stand-in */\n")
    for d in ("mpy-cross", "ports/rp2", "ports/esp32"):
        (mp / d).mkdir(parents=True)
        (mp / d / "Makefile").write_text(MAKEFILE)
    log = tmp_path / "make.log"
    monkeypatch.setenv("LOG", str(log))
    return mp, log


@pytest.mark.parametrize("board,port,mpy_board", [
    ("w5500_evb_pico", "rp2", "W5500_EVB_PICO"),
    ("pico_enc28j60", "rp2", "RPI_PICO"),
    ("esp32_w5500", "esp32", "ESP32_GENERIC")])
def test_freeze_builds_the_ports_firmware_with_the_boards_modules(checkout, tmp_path, board,
                                                                   port, mpy_board):
    mp, log = checkout
    out = tmp_path / "mpy"
    r = subprocess.run([sys.executable, "-m", "ustack.ports.micropython.freeze", "--board", board,
                        "--micropython", str(mp), "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = str(out / board / "freeze" / "manifest.py")
    lines = log.read_text().splitlines()
    assert lines[0].startswith(str(mp / "mpy-cross") + " ")        # mpy-cross first
    assert lines[1] == "%s submodules BOARD=%s" % (mp / "ports" / port, mpy_board)
    assert lines[2] == "%s BOARD=%s FROZEN_MANIFEST=%s GOAL=" % (
        mp / "ports" / port, mpy_board, manifest)
    # the manifest, read the way MicroPython's loader reads it, freezes the board's modules
    m = fz.read_manifest(manifest)
    assert m["include"] == ["$(PORT_DIR)/boards/manifest.py"]     # the port's own stays
    (pkg, pkg_dir), = m["package"]
    assert pkg == "ustack"
    frozen = sorted(os.path.relpath(os.path.join(d, f), pkg_dir)
                    for d, _, fs in os.walk(pkg_dir) for f in fs if f.endswith(".py"))
    from ustack import boards
    mods, _, _ = select_modules(boards.load(board))
    want = sorted(rel for rel, _ in mods)
    assert [f for f in frozen if f in want] == want                  # every module it needs
    extra = [f for f in frozen if f not in want]
    assert extra == ["__init__.py"], extra        # and nothing else (the package root)
    assert [n for n, _ in m["module"]] == ["board_cfg.py"]


def test_freeze_refuses_in_one_line(checkout, tmp_path):
    mp, log = checkout
    for args, msg in (
            (["--board", "pc_tap", "--micropython", str(mp)], "--board pc_tap: not a MicroPython board"),
            (["--board", "nope", "--micropython", str(mp)], "--board nope: no such board"),
            (["--board", "w5500_evb_pico", "--micropython", str(tmp_path)],
             "--micropython %s: not a MicroPython checkout" % tmp_path)):
        r = subprocess.run([sys.executable, "-m", "ustack.ports.micropython.freeze"] + args,
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode != 0 and r.stdout == "", r
        assert r.stderr.strip().splitlines() == ["ustack freeze: " + r.stderr.strip()[15:]]
        assert msg in r.stderr, r.stderr
    assert not log.exists()   # make never ran


def test_a_failing_make_is_one_line_too(checkout, tmp_path):
    mp, log = checkout
    (mp / "ports" / "rp2" / "Makefile").write_text("all:\n\t@exit 3\nsubmodules:\n\t@true\n")
    r = subprocess.run([sys.executable, "-m", "ustack.ports.micropython.freeze", "--board",
                        "w5500_evb_pico", "--micropython", str(mp), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode != 0
    assert "ustack freeze: make" in r.stderr and "failed (exit 2)" in r.stderr, r.stderr
