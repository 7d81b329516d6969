"""benchmarks/mpy_cpu.py with a tiny budget, under the real MicroPython unix port: every row's
workload completes (each echo, request, connection and reply; every byte of the bulk rows)
and gets a figure, for this checkout and for a second copy given as a base."""
import os

import pytest

from tests.micropython.mpyhelp import needs_micropython

pytestmark = [needs_micropython]


def test_every_row_completes_for_each_copy(tmp_path, capsys):
    from benchmarks import mpy_cpu
    base = tmp_path / "base"
    base.mkdir()
    os.symlink(mpy_cpu.ROOT, str(base / "ustack"))   # "another copy": this one again
    r = mpy_cpu.main(["--base", "again=%s" % base, "--runs", "1", "--scale", "0.05"])
    assert [t[0] for t in r["trees"]] == ["again", "new"]
    for name in ("again", "new"):
        for row in mpy_cpu.ROWS:
            (us,) = r["results"][name][row]   # main refuses a run short of its operations
            (both,) = r["both"][name][row]
            assert 0 <= us <= both, (name, row, us, both)
        assert r["both"][name]["echo"][0] > 0 and r["both"][name]["bulk_in"][0] > 0
    out = capsys.readouterr().out
    assert "| bulk_in (us/MB) |" in out and "| cps (us/connection) |" in out


def test_a_base_without_a_checkout_is_refused(tmp_path):
    from benchmarks import mpy_cpu
    with pytest.raises(SystemExit):
        mpy_cpu.main(["--base", "x=%s" % tmp_path])
