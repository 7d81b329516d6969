"""`invoke hil --board B --port P`: hardware in the loop. Deploy the board's build with
mpremote (ports/micropython/deploy.py), wait until the board answers, then run the interop
checks from this host against it: ping (small and 1472-byte payloads), UDP echo, and a TCP
echo checked by SHA-256 (boards with the tcp feature). The host needs a route to the board's
address (its NIC on the same Ethernet segment, or a USB-Ethernet adapter).

    python -m ustack.ports.micropython.hil --board w5500_evb_pico --port /dev/ttyACM0 \\
        --ip 192.0.2.2
    ... --no-deploy        (the board already runs the build)
    ... --set SERVE=echo   (board_cfg overrides written before copying; repeatable)

CI smoke-tests this harness against the unix port on a pty whose stack is bridged to a TAP
in a network namespace (tests/micropython/test_hil.py). Exit status 0 = every check passed.
"""
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time


def ping(ip, count, size=56, interval=0.01, deadline=60):
    r = subprocess.run(["ping", "-n", "-c", str(count), "-i", str(interval), "-s", str(size),
                        "-w", str(deadline), ip], capture_output=True, text=True,
                       timeout=deadline + 30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    rtt = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)", r.stdout)
    sent, got = (int(m.group(1)), int(m.group(2))) if m else (count, 0)
    return sent, got, float(rtt.group(2)) if rtt else None


def wait_up(ip, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ping(ip, 1, deadline=2)[1] == 1:
            return True
    return False


def udp_echo(ip, n=100, port=7):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    ok = 0
    t0 = time.perf_counter()
    try:
        for i in range(n):
            m = bytes([i & 0xFF]) * (1 + (i * 13) % 1400)
            s.sendto(m, (ip, port))
            try:
                d, _ = s.recvfrom(2048)
            except socket.timeout:
                continue
            ok += d == m
    finally:
        s.close()
    return ok, time.perf_counter() - t0


def tcp_echo(ip, nbytes, port=7, timeout=120):
    data = os.urandom(nbytes)
    s = socket.create_connection((ip, port), timeout=30)
    got = bytearray()

    def reader():
        while len(got) < nbytes:
            try:
                b = s.recv(65536)
            except OSError:
                break
            if not b:
                break
            got.extend(b)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t0 = time.perf_counter()
    s.sendall(data)
    t.join(timeout)
    dt = time.perf_counter() - t0
    s.close()
    return hashlib.sha256(bytes(got)).digest() == hashlib.sha256(data).digest(), len(got), dt


def run(board, port, ip=None, deploy_first=True, settings=None, out_dir="build/mpy",
        tcp_bytes=256 * 1024, pings=200, log=print):
    """Deploy and check; returns (ok, results list of (name, ok, detail))."""
    from ustack import boards
    if isinstance(board, str):
        board = boards.load(board)
    ip = ip or getattr(board, "IP", "192.0.2.2/24").split("/")[0]
    results = []
    if deploy_first:
        from ustack.ports.micropython.deploy import deploy
        r = deploy(board, port, out_dir=out_dir, settings=settings)
        results.append(("deploy", True, "%d files, %d bytes" % (r["files"], r["bytes"])))
        log("deployed %s to %s" % (r["board"], port))
    up = wait_up(ip)
    results.append(("answers", up, ip))
    if up:
        sent, got, rtt = ping(ip, pings, interval=0.002)
        results.append(("ping", got == sent, "%d/%d avg %s ms" % (got, sent, rtt)))
        sent, got, _ = ping(ip, 20, size=1472, interval=0.01)
        results.append(("ping 1472", got == sent, "%d/%d" % (got, sent)))
        ok, dt = udp_echo(ip)
        results.append(("udp echo", ok == 100, "%d/100 in %.2f s" % (ok, dt)))
        if "tcp" in (getattr(board, "FEATURES", ()) or ()):
            try:
                good, n, dt = tcp_echo(ip, tcp_bytes)
                results.append(("tcp echo", good, "%d bytes, sha256 %s, %.0f KB/s" % (
                    n, "match" if good else "MISMATCH", n / 1024 / dt if dt else 0)))
            except OSError as e:
                results.append(("tcp echo", False, repr(e)))
    for name, ok, detail in results:
        log("%-10s %-4s %s" % (name, "ok" if ok else "FAIL", detail))
    return all(ok for _, ok, _ in results), results


def main(argv=None):
    import argparse
    from ustack.ports.cpython import cli
    p = cli.one_line_errors(argparse.ArgumentParser(
        prog="ustack-hil", description="deploy to a board and run the interop checks against it"),
        "ustack-hil")
    p.add_argument("--board", default="")
    p.add_argument("--port", default="")
    p.add_argument("--ip", default=None, help="the board's address (default: its board config)")
    p.add_argument("--no-deploy", action="store_true")
    p.add_argument("--out", default="build/mpy")
    p.add_argument("--tcp-bytes", type=int, default=256 * 1024)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    try:  # the checks `ustack up` makes of an address, before any board is touched
        if a.ip is not None:
            cli.check_unicast("--ip", a.ip, cli.check_ipv4("--ip", a.ip))
        if a.board:
            cli.load_board(a.board)
        settings = dict(cli.check_config_item(kv, "--set") for kv in a.set)
    except SystemExit as e:
        raise cli.reword(e, "ustack-hil")
    if not a.port:
        print("hil: no board attached (pass --port): skipped")
        return 0
    if not a.board:
        print("hil: --port %s needs --board (the board config to deploy)" % a.port, file=sys.stderr)
        return 2
    ok, _ = run(a.board, a.port, a.ip, not a.no_deploy, settings or None, a.out, a.tcp_bytes)
    print("hil: %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
