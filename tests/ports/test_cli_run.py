"""`ustack run [flags] -- python prog.py`: a program is required, named in one line."""
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap",
                           "ustk-none"] + list(args), capture_output=True, text=True, timeout=60)


def test_run_without_a_program_is_one_line_naming_the_usage():
    for args in ((), ("--",), ("--", "python3")):
        r = run(*args)
        assert r.returncode != 0
        assert r.stderr.strip().count("\n") == 0 and "ustack run [flags] -- python prog.py" in r.stderr
        assert "Traceback" not in r.stderr
