"""What the filter's interop tests (IPv4: tests/interop/test_filter_linux.py, IPv6:
test_filter6_linux.py) ask of the Linux side: the outcome of a TCP connect or a UDP exchange
with the stack as the kernel's socket reports it, the rule list, the exit counters."""
import json
import sys

CLI = [sys.executable, "-m", "ustack.ports.cpython.cli"]


def kernel(ns, code, timeout=60):
    """Python run by the kernel's side; its stdout stripped."""
    r = ns.python(code, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def _family(addr):
    return "socket.AF_INET6" if ":" in addr else "socket.AF_INET"


def connect_outcome(ns, addr, port, timeout=2.0):
    """'connected', 'timeout' or the errno's name of a TCP connect to addr:port."""
    return kernel(ns, (
        "import socket, errno\n"
        "s = socket.socket(%s); s.settimeout(%r)\n"
        "try:\n    s.connect(('%s', %d)); print('connected')\n"
        "except socket.timeout:\n    print('timeout')\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno])\n"
        % (_family(addr), timeout, addr, port)))


def udp_outcome(ns, addr, port):
    """A connected UDP socket's send, then recv: 'answered', 'timeout', or the errno an ICMP
    or ICMPv6 error brought back."""
    return kernel(ns, (
        "import socket, errno\n"
        "s = socket.socket(%s, socket.SOCK_DGRAM); s.settimeout(1.5)\n"
        "s.connect(('%s', %d)); s.send(b'x')\n"
        "try:\n    s.recv(100); print('answered')\n"
        "except socket.timeout:\n    print('timeout')\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno])\n" % (_family(addr), addr, port)))


def filter_list(ns):
    r = ns.run(CLI + ["filter", "--json"])
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def stopped(stack):
    """The exit counters, every buffer back in the pool."""
    c = stack.stop()
    assert c["pbuf.free"] == c["pbuf.count"]
    return c
