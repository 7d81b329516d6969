"""`ustack run [flags] -- python prog.py`: a program is required, named in one line."""
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "run", "--tap",
                           "ustk-none"] + list(args), capture_output=True, text=True, timeout=60)


def test_run_without_a_program_is_one_line_naming_the_usage():
    for args in ((), ("--",), ("--", "python3")):
        r = run(*args)
        assert r.returncode != 0
        assert r.stderr.strip().count("\n") == 0 and "ustack run [flags] -- python prog.py" in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("how", [["-m", "argv_eater"], ["argv_eater.py"]])
def test_a_program_that_consumes_sys_argv_ends_with_its_own_exception(how, tmp_path,
                                                                      monkeypatch):
    # uiperf3's main() pops every sys.argv entry; on Ctrl-C `ustack run -m uiperf3 -s` ended
    # in IndexError (runpy restoring sys.argv[0] of an empty list) instead of the
    # KeyboardInterrupt that `python -m uiperf3 -s` ends with
    from ustack.ports.cpython import cli
    (tmp_path / "argv_eater.py").write_text(
        "import sys\n"
        "sys.argv_eater_saw = (__name__, list(sys.argv))\n"
        "del sys.argv[:]\n"
        "raise KeyboardInterrupt\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    monkeypatch.setattr(sys, "argv_eater_saw", None, raising=False)
    try:
        cli._run_program(["python3"] + how + ["-s"])
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the program's KeyboardInterrupt did not reach the caller")
    # as `python -m`: the module ran as __main__, with argv[0] its file and its own arguments
    argv0 = str(tmp_path / "argv_eater.py") if how[0] == "-m" else "argv_eater.py"
    assert sys.argv_eater_saw == ("__main__", [argv0, "-s"])
