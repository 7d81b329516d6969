"""StreamLink (the MicroPython side of the bridge) writes a short frame and its 2-byte length
in one write where the heap allows a send buffer (issue 13): two writes woke the bridge twice
per frame, a 2-byte read and a select more for every ping. A frame longer than TX_COALESCE
keeps two writes (the copy would cost more than the write), and so does every frame on an
MCU-sized heap (the 64 KB data budget of test_memory.py). Either way the bridge's
FrameStream gets every frame intact."""
import json
import os
import subprocess
import threading

import pytest

from ustack.ports.cpython.bridge import FrameStream, listen
from tests.micropython.mpyhelp import needs_micropython, MPY, HERE

pytestmark = [needs_micropython]

SCRIPT = os.path.join(HERE, "mp_scripts", "stream_writes.py")
SIZES = [60, 64, 1514, 1000, 42, 512, 513, 98]
SHORT = [n for n in SIZES if n <= 512]   # streamlink.TX_COALESCE


@pytest.mark.parametrize("heap, coalesced", [("16M", True), ("512K", False)])
def test_one_write_per_short_frame_where_the_heap_allows(mpy_lib, tmp_path, heap, coalesced):
    ls, spec = listen("unix:" + str(tmp_path / "s.sock"))
    got = []

    def serve():
        ls.settimeout(30)
        c, _ = ls.accept()
        fs = FrameStream(c)
        while len(got) < len(SIZES):
            f = fs.recv(30)
            if f is None:
                break
            got.append(f)
        fs.close()
    t = threading.Thread(target=serve)
    t.start()
    try:
        r = subprocess.run([MPY, "-X", "heapsize=" + heap, SCRIPT, mpy_lib, spec] +
                           [str(n) for n in SIZES], capture_output=True, text=True, timeout=60)
    finally:
        t.join(30)
        ls.close()
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["frames"] == len(SIZES)
    assert res["coalesced"] == coalesced, res
    assert res["writes"] == 2 * len(SIZES) - (len(SHORT) if coalesced else 0), res
    assert [len(f) for f in got] == SIZES
    for f in got:
        assert f == bytes((len(f) + i) & 0xFF for i in range(len(f)))
