"""How early `ustack up` catches its signals (issue 11: Ctrl-C at any moment, the first 50 ms
included, ends it without a traceback). Everything Python runs before the first lines of
ports/cpython/cli.py is a window where Ctrl-C ends the start-up with a KeyboardInterrupt
traceback nothing of ustack's can catch: the interpreter's own start-up (site, the
editable install's finder), then the package __init__ files on the way to the cli module.
These tests keep the part that is ustack's as small as it can be: importing the packages
loads no module of their own beyond themselves, and the cli module installs its handlers
before importing anything Python's start-up has not loaded already."""
import subprocess
import sys

ON_THE_WAY = ["ustack", "ustack.ports", "ustack.ports.cpython"]

PROBE = """
import sys
before = set(sys.modules)
import %s
print(" ".join(sorted(set(sys.modules) - before)))
"""


def loaded_by(module):
    r = subprocess.run([sys.executable, "-c", PROBE % module], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_importing_the_packages_on_the_way_to_the_cli_loads_nothing_else():
    assert loaded_by("ustack.ports.cpython") == ON_THE_WAY


def test_the_package_attributes_still_work_when_asked_for():
    r = subprocess.run([sys.executable, "-c", "import ustack; print(ustack.compiled in "
                        "(True, False), ustack.__version__.count('.') >= 1)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["True", "True"], (r.stdout, r.stderr)


HANDLER_AT = """
import sys
import _signal
sys.argv = ["ustack", "up"]
before = set(sys.modules)
seen = []
class Watch:
    # a trace function sees the cli module's lines run: it notes what was loaded by the time
    # SIGINT's handler is no longer the default one
    def __call__(self, frame, event, arg):
        if not seen and _signal.getsignal(2) is not _signal.default_int_handler:
            seen.append(sorted(set(sys.modules) - before))
        return self
sys.settrace(Watch())
import ustack.ports.cpython.cli
sys.settrace(None)
print(" ".join(seen[0]) if seen else "never")
"""


def test_the_cli_catches_signals_before_importing_anything_new():
    """`ustack` (the console script) imports the cli module: by the time its handler is in
    place only the packages on the way and the cli module itself are new."""
    r = subprocess.run([sys.executable, "-c", HANDLER_AT], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ON_THE_WAY + ["ustack.ports.cpython.cli"], \
        r.stdout
