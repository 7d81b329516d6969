"""The compiled CPython I/O path (issue 13): setup.py compiles hal/tap.py, hal/tapsteer.py,
ports/cpython runner.py, services.py and tcp_services.py beside core/ (augmenting .pxd files:
cdef classes with C fields), and hal/tapio.pyx is the C form of hal/tapio.py (the TAP's
system calls, the runner's wait, the clock). These checks keep the compiled modules the ones
imported in a build, the pure ones under USTACK_PURE=1, both behaving alike, and
`invoke build --pure`/`clean` removing what the build made."""
import errno
import importlib.util
import os
import socket
import subprocess
import time

import pytest

from tests.ports.test_typed_core import _run  # a fresh interpreter, either build
# the I/O path as ustack.compiled checks it (setup.py's CPYTHON_IO: a test below keeps the two
# lists the same)
from ustack import _IO as IO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMPILED = r"""
import importlib, ustack
assert ustack.compiled, "core or I/O path not compiled"
for name in %r:
    m = importlib.import_module(name)
    assert not m.__file__.endswith(".py"), m.__file__
from ustack.hal.tap import Tap
from ustack.hal.tapio import Waiter
from ustack.ports.cpython.runner import Runner
from ustack.ports.cpython.services import UdpEcho
from ustack.ports.cpython.tcp_services import EventService
from ustack.hal.tapsteer import Steering
HEAP = 1 << 9   # Py_TPFLAGS_HEAPTYPE: a class statement's type, not a cdef class
for cls in (Tap, Runner, UdpEcho, EventService, Waiter, Steering):
    assert not cls.__flags__ & HEAP, cls
for f in (Tap.recv_into, Tap.send, Tap._read, Runner.step):
    assert type(f).__name__ in ("method_descriptor", "cython_function_or_method"), (f, type(f))
t = Tap.__new__(Tap)
t._queues([5], b"\x02\0\0\0\0\x02", 1500)
try:
    t.got = "1"
    raise SystemExit("Tap.got took a str: not a C field")
except TypeError:
    pass
t.a_test_hook = 1   # the __dict__ keeps what the .pxd does not declare
print("compiled-io")
""" % (IO,)

PURE = r"""
import importlib, ustack
assert not ustack.compiled
for name in %r:
    m = importlib.import_module(name)
    assert m.__file__.endswith(".py"), m.__file__
from ustack.hal.tap import Tap
from ustack.ports.cpython.runner import Runner
assert Tap.__flags__ & (1 << 9) and Runner.__flags__ & (1 << 9)
print("pure-io")
""" % (IO,)


def test_the_io_path_is_extension_modules_in_the_compiled_build():
    r = _run(COMPILED, pure=False)
    assert r.returncode == 0 and r.stdout.strip() == "compiled-io", r.stdout + r.stderr


def test_ustack_pure_imports_the_io_path_as_python_source():
    r = _run(PURE, pure=True)
    assert r.returncode == 0 and r.stdout.strip() == "pure-io", r.stdout + r.stderr


def test_compiled_is_false_when_the_io_path_is_found_as_source():
    # a build that compiled the core but left the I/O path as .py must not say compiled=True
    code = r"""
import importlib.util, ustack
real = importlib.util.find_spec
class Spec:
    origin = "/x/tap.py"
importlib.util.find_spec = lambda name, *a: Spec() if name == "ustack.hal.tap" else real(name, *a)
print(ustack.compiled)
"""
    r = _run(code, pure=False)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr


# -- hal/tapio: the compiled calls and their pure form behave alike ---------------------------

def _pure_tapio():
    spec = importlib.util.spec_from_file_location("tapio_pure", os.path.join(ROOT, "hal",
                                                                           "tapio.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _forms():
    from ustack.hal import tapio
    forms = [_pure_tapio()]
    if not tapio.__file__.endswith(".py"):
        forms.append(tapio)
    return forms


@pytest.fixture(params=["pure", "compiled"])
def tapio(request):
    forms = _forms()
    if request.param == "compiled":
        if len(forms) < 2:
            # USTACK_PURE=1 runs: the pure form is the one imported, checked by "pure"
            return forms[0]
        return forms[1]
    return forms[0]


def test_read_gives_a_frame_and_zero_when_none_waits_without_an_exception(tapio):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.setblocking(False)
        buf = bytearray(100)
        assert tapio.read(a.fileno(), buf) == 0      # EAGAIN: 0, nothing raised
        b.send(b"frame!")
        assert tapio.read(a.fileno(), buf) == 6 and bytes(buf[:6]) == b"frame!"
        assert tapio.read(a.fileno(), memoryview(buf)[10:]) == 0
    finally:
        a.close()
        b.close()
    r, w = os.pipe()
    os.close(w)
    os.close(r)
    assert tapio.read(r, bytearray(4)) == -errno.EBADF   # another error: -errno


def test_readv_splits_header_frame_and_tail(tapio):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.setblocking(False)
        hdr = bytearray(10)
        buf = bytearray(8)
        tail = bytearray(20)
        b.send(bytes(range(10)) + b"ABCDEFGH" + b"tail")
        assert tapio.readv(a.fileno(), hdr, buf, tail) == 22
        assert hdr == bytearray(range(10)) and buf == bytearray(b"ABCDEFGH")
        assert bytes(tail[:4]) == b"tail"
        b.send(bytes(10) + b"xy")
        assert tapio.readv(a.fileno(), hdr, buf, None) == 12 and bytes(buf[:2]) == b"xy"
        assert tapio.readv(a.fileno(), hdr, buf, None) == 0
        with pytest.raises(BufferError):
            tapio.readv(a.fileno(), hdr, b"read-only", None)   # a frame into bytes: refused
    finally:
        a.close()
        b.close()


def test_write_and_writev_send_the_first_n_bytes_as_one_frame(tapio):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        b.setblocking(False)
        buf = bytearray(b"0123456789")
        assert tapio.write(a.fileno(), buf, 4) == 4
        assert b.recv(100) == b"0123"
        assert tapio.writev(a.fileno(), b"HDR", buf, 10) == 13
        assert b.recv(100) == b"HDR0123456789"
        for bad in (-1, 11):
            with pytest.raises(ValueError):
                tapio.write(a.fileno(), buf, bad)
            with pytest.raises(ValueError):
                tapio.writev(a.fileno(), b"H", buf, bad)
        b.close()
        assert tapio.write(a.fileno(), buf, 4) < 0   # the peer gone: -errno, not an exception
    finally:
        a.close()
        b.close()


def test_poll_in_and_the_waiter_name_the_readable_descriptors(tapio, tmp_path):
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        fds = [p[0].fileno() for p in pairs]
        w = tapio.Waiter(fds + [fds[0]])   # a descriptor named twice is waited on once
        assert w.nfds == 3 and w.is_epoll()
        out = [0] * 3
        assert w.wait(0.0, out) == 0 and not tapio.poll_in(fds[1])
        pairs[1][1].send(b"x")
        pairs[2][1].send(b"y")
        assert tapio.poll_in(fds[1]) and not tapio.poll_in(fds[0])
        n = w.wait(0.0, out)
        assert n == 2 and sorted(out[:n]) == sorted(fds[1:])
        assert w.wait(5.0, out) == 2   # readable now: no wait
        with pytest.raises(ValueError):
            w.wait(0.0, [0])            # the answer's list must hold every descriptor
        w.close()
        # a regular file: epoll refuses it, poll() takes it (always readable)
        f = open(tmp_path / "f", "wb+")
        try:
            w = tapio.Waiter([fds[0], f.fileno()])
            assert not w.is_epoll()
            out = [0, 0]
            n = w.wait(0.0, out)
            assert n == 1 and out[0] == f.fileno()
            w.close()
        finally:
            f.close()
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_the_waiter_takes_objects_with_a_fileno_as_select_does(tapio):
    # hal/afpacket.py's poll_obj() is its socket: the runner waits on it like on a number
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        w = tapio.Waiter([a, a.fileno()])
        assert w.nfds == 1
        out = [0]
        b.send(b"x")
        assert w.wait(0.0, out) == 1 and out[0] == a.fileno()
        w.close()
    finally:
        a.close()
        b.close()


def test_the_clock_is_time_monotonics(tapio):
    a = time.monotonic_ns()
    b = tapio.monotonic_ns()
    c = time.monotonic_ns()
    assert a <= b <= c
    ms = tapio.monotonic_ms()
    assert abs(ms - int(time.monotonic() * 1000)) <= 1


# -- invoke build --pure / clean --------------------------------------------------------------

def test_build_pure_and_clean_remove_the_compiled_io_path_and_keep_the_sources(tmp_path):
    import importlib.util as u
    spec = u.spec_from_file_location("ustack_tasks", os.path.join(ROOT, "tasks.py"))
    tasks = u.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    made = ["core/x.cpython-311-x86_64-linux-gnu.so", "core/x.c", "core/tcp/y.c",
            "hal/tap.cpython-311-x86_64-linux-gnu.so", "hal/tap.c", "hal/tapio.c",
            "hal/tapio.cpython-311-x86_64-linux-gnu.so",
            "ports/cpython/runner.cpython-311-x86_64-linux-gnu.so", "ports/cpython/runner.c"]
    kept = ["core/x.py", "hal/tap.py", "hal/tap.pxd", "hal/tapio.py", "hal/tapio.pyx",
            "hal/tapio.pxd", "ports/cpython/runner.py",
            "hal/dpdk/_rte.cpython-311-x86_64-linux-gnu.so", "hal/dpdk/_rte.c"]
    for p in made + kept:
        f = tmp_path / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")
    r = subprocess.run(tasks.REMOVE_COMPILED, shell=True, cwd=str(tmp_path), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    left = sorted(os.path.relpath(os.path.join(d, f), str(tmp_path))
                  for d, _, fs in os.walk(str(tmp_path)) for f in fs)
    assert left == sorted(kept), left


def test_the_compiled_check_and_the_build_name_the_same_io_modules():
    """ustack.compiled looks for the modules setup.py compiles: a module added to one list
    and not the other would be built but never checked, or checked but never built."""
    from tests.ports.test_tasks import _setup_module
    built = {"ustack." + os.path.splitext(p)[0].replace("/", ".")
             for p in _setup_module().CPYTHON_IO}
    assert built == set(IO)
