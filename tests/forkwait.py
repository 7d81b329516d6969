"""The parent's side of a fork() test: read what the child reported through a pipe and wait
for it, ending it by its PID if it hangs (a child that hangs is what these tests look for)."""
import os
import select
import signal
import time


def child_report(pid, r, timeout=10):
    """(exited, wait status, the child's report or None); closes r."""
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        got = os.read(r, 4096).decode() if ready else None
        end = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done or time.monotonic() > end:
                break
            time.sleep(0.05)
        if not done:
            os.kill(pid, signal.SIGKILL)  # the child we forked, by its PID
            os.waitpid(pid, 0)
    finally:
        os.close(r)
    return done, status, got
