"""Every command and snippet of the README runs as written. The fenced blocks are taken from
README.md and run by kind: `console` (`$ ` command lines, each followed by what it prints: run
in a throwaway namespace from the checkout), `python` (CPython, as root in a throwaway
namespace whose kernel also runs a web server on port 8000, the peer the snippets name),
`python micropython` (the same under the MicroPython unix port, by the README's own command),
`text` (diagrams: not run). Every `print(...)  # SHOWN` line must print SHOWN (`<...>` matches
anything). The two setup commands are the ones CI runs."""
import os
import re
import signal
import sys
import time

import pytest

from tests.conftest import needs_netns
from tests.micropython.mpyhelp import needs_micropython
from tests.netns import Netns

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = open(os.path.join(ROOT, "README.md")).read()
KINDS = ("console", "python", "python micropython", "text")
PEER_PORT = 8000  # the web server on the host the snippets fetch from


def fenced_blocks(text=README):
    """[(info string, body, line number)] of every ``` block."""
    out = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            info, start = lines[i][3:].strip(), i + 1
            j = start
            while not lines[j].startswith("```"):
                j += 1
            out.append((info, "\n".join(lines[start:j]) + "\n", start))
            i = j
        i += 1
    return out


def blocks_of(kind):
    return [(body, line) for info, body, line in fenced_blocks() if info == kind]


def shown_outputs(body):
    """The outputs the snippet's `print(...)  # SHOWN` comments promise, as regexes."""
    out = []
    for line in body.splitlines():
        m = re.match(r"\s*print\(.*\)\s+#\s*(.+)$", line)
        if m:
            parts = re.split(r"<[^>]*>", m.group(1).strip())
            out.append(".+".join(re.escape(p) for p in parts))
    return out


def assert_prints_what_is_shown(body, output):
    shown = shown_outputs(body)
    assert shown, "the snippet shows no output:\n" + body
    for pat in shown:
        assert any(re.fullmatch(pat, l.strip()) for l in output.splitlines()), (pat, output)


class WebPeer:
    """A throwaway namespace whose kernel runs a web server on PEER_PORT (any address, so it
    answers on the TAP's address once the snippet has made it)."""

    SERVER = ("import http.server, os, sys\nos.chdir(sys.argv[1])\n"
              "s = http.server.HTTPServer(('', %d), http.server.SimpleHTTPRequestHandler)\n"
              "print('up', flush=True)\ns.serve_forever()\n" % PEER_PORT)

    def __init__(self, tmp_path):
        self.ns = Netns("readme")
        (tmp_path / "www").mkdir()
        (tmp_path / "www" / "index.html").write_text("<h1>peer</h1>\n")
        self.server = self.ns.popen([sys.executable, "-c", self.SERVER, str(tmp_path / "www")])
        assert self.server.stdout.readline().strip() == "up"

    def close(self):
        self.ns.close()


@pytest.fixture
def peer(tmp_path):
    p = WebPeer(tmp_path)
    yield p
    p.close()


def test_every_fenced_block_is_of_a_kind_this_test_runs():
    found = fenced_blocks()
    assert len(found) >= 6
    for info, body, line in found:
        assert info in KINDS, "README.md line %d: ```%s is not one of %s" % (line, info, KINDS)


def test_setup_commands_are_the_ones_ci_runs():
    ci = [l for l in open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
          if l and not l.startswith(("#", "set ", "cd "))]
    assert ci == ["bash .ci/setup && .venv/bin/invoke test"]
    shown = [l.strip() for l in README.split("## Using it")[0].splitlines() if l.startswith("    ")]
    assert shown == ["bash .ci/setup && .venv/bin/invoke demo", ci[0]]


def test_commands_name_the_ustack_that_setup_installs():
    """.ci/setup does not put ustack on PATH (the venv is not activated): the README's
    commands use .venv/bin/ustack, which setup makes."""
    assert os.access(os.path.join(ROOT, ".venv", "bin", "ustack"), os.X_OK)
    for body, line in blocks_of("console"):
        for cmd in [l[2:] for l in body.splitlines() if l.startswith("$ ")]:
            if "ustack" in cmd.split()[0]:
                assert cmd.startswith(".venv/bin/ustack "), (line, cmd)


def fields(line):
    return [tuple(kv.split("=", 1)) for kv in line.split()[1:]]


@needs_netns
def test_console_commands_run_as_written_and_print_what_is_shown():
    assert blocks_of("console"), "the README shows no command with its output"
    for body, line in blocks_of("console"):
        lines = body.splitlines()
        for k, cmd in enumerate(lines):
            if not cmd.startswith("$ "):
                continue
            shown = []
            for out in lines[k + 1:]:
                if out.startswith("$ "):
                    break
                shown.append(out)
            ns = Netns("readme")
            try:
                p = ns.popen(["sh", "-c", "exec " + cmd[2:]], cwd=ROOT)
                got = []
                end = time.monotonic() + 60
                while len(got) < len(shown) and time.monotonic() < end:
                    l = p.stdout.readline()
                    if not l:
                        break
                    got.append(l.rstrip("\n"))
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)  # a long-lived `ustack up`: stop it
                rest, _ = p.communicate(timeout=30)
                assert len(got) == len(shown), (line, cmd, got, rest)
                for want, real in zip(shown, got):
                    if want.startswith("ready "):
                        w, r = fields(want), fields(real)
                        # compiled= says how this checkout was built; the rest is exact
                        assert [kv for kv in w if kv[0] != "compiled"] == \
                            [kv for kv in r if kv[0] != "compiled"], (want, real)
                        assert [kv[0] for kv in w] == [kv[0] for kv in r], (want, real)
                    else:
                        assert want == real, (line, cmd)
                assert p.returncode == 0, (cmd, rest)
            finally:
                ns.close()


@needs_netns
@pytest.mark.parametrize("body,line", blocks_of("python"),
                         ids=["README.md:%d" % l for _, l in blocks_of("python")])
def test_python_snippet_runs_and_ends_printing_what_is_shown(body, line, peer, tmp_path):
    prog = tmp_path / "snippet.py"
    prog.write_text(body)
    # from a folder outside the checkout, with the venv's python, as a user would
    r = peer.ns.run([sys.executable, str(prog)], timeout=60)
    assert r.returncode == 0, "README.md line %d:\n%s%s" % (line, r.stdout, r.stderr)
    assert_prints_what_is_shown(body, r.stdout)


def micropython_command():
    """The README's command for running a program under the unix port (prog.py: the file)."""
    m = re.search(r"`(\.venv/bin/python -m ustack\.ports\.micropython\.runtime run[^`]*prog\.py)`",
                  README.replace("\n", " "))
    assert m, "the README gives no command to run a program on the unix port"
    return re.sub(r"\s+", " ", m.group(1))


@needs_netns
@needs_micropython
def test_micropython_snippet_runs_on_the_unix_port_by_the_readmes_command(peer, tmp_path):
    (body, line), = blocks_of("python micropython")
    prog = tmp_path / "prog.py"
    prog.write_text(body)
    cmd = micropython_command().replace("prog.py", str(prog))
    r = peer.ns.run(["sh", "-c", "cd %s && exec %s" % (ROOT, cmd)], timeout=120)
    assert r.returncode == 0, "README.md line %d:\n%s%s" % (line, r.stdout, r.stderr)
    assert_prints_what_is_shown(body, r.stdout)


def portable_snippets():
    """The python blocks that use only the core and hal (the README says: any runtime)."""
    return [(b, l) for b, l in blocks_of("python")
            if "ustack.ports" not in b and "ustack.patch" not in b and "import socket" not in b]


def test_the_core_snippet_is_there():
    assert len(portable_snippets()) == 1


@needs_micropython
@pytest.mark.parametrize("body,line", portable_snippets(),
                         ids=["README.md:%d" % l for _, l in portable_snippets()])
def test_core_snippet_runs_under_micropython_too(body, line, tmp_path):
    from tests.micropython.mpyhelp import run_mpy, stage_lib
    lib = stage_lib(str(tmp_path / "lib"))
    r = run_mpy(["-c", "import sys\nsys.path.insert(0, %r)\n" % lib + body], cwd=lib, timeout=120)
    assert r.returncode == 0, "README.md line %d:\n%s%s" % (line, r.stdout, r.stderr)
    assert_prints_what_is_shown(body, r.stdout)
