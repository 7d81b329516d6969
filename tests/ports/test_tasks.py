"""The invoke tasks users type: listed, building a board, and the HIL task's no-board path."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVOKE = os.path.join(os.path.dirname(sys.executable), "invoke")


def inv(*args):
    return subprocess.run([INVOKE] + list(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_every_task_is_listed():
    r = inv("--list")
    assert r.returncode == 0, r.stderr
    names = {line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()}
    assert {"build", "test", "bench", "demo", "mpy", "deploy", "hil", "clean"} <= names


def test_mpy_task_builds_a_board(tmp_path):
    r = inv("mpy", "--board", "w5500_evb_pico", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-march=armv6m" in r.stdout and "total" in r.stdout
    out = tmp_path / "w5500_evb_pico"
    assert (out / "board_cfg.py").exists() and (out / "main.py").exists()
    assert (out / "lib" / "ustack" / "hal" / "w5500.mpy").exists()
    assert (out / "freeze" / "manifest.py").exists()


def test_hil_without_a_board_is_skipped_with_a_message():
    r = inv("hil")
    assert r.returncode == 0 and "no board attached" in r.stdout, r.stdout + r.stderr


def test_hil_with_a_port_but_no_board_config_is_an_error():
    r = subprocess.run([sys.executable, "-m", "ustack.ports.micropython.hil", "--port",
                        "/dev/ttyACM9"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "needs --board" in r.stderr


def test_build_fails_when_a_module_does_not_compile():
    """setup.py builds pure Python where there is no compiler, so a failed build_ext is a
    module that did not compile: `invoke build` stops non-zero in one line instead of
    printing "done" over the old compiled module, which would still be imported."""
    import contextlib
    import importlib.util
    import pytest
    spec = importlib.util.spec_from_file_location("ustack_tasks", os.path.join(ROOT, "tasks.py"))
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    ran = []

    class Result:
        def __init__(self, exited):
            self.exited = exited

    class Ctx:
        def cd(self, path):
            return contextlib.nullcontext()

        def run(self, cmd, **kw):
            ran.append(cmd)
            return Result(1 if "build_ext" in cmd else 0)
    with pytest.raises(SystemExit) as e:
        tasks.build.body(Ctx())
    assert "compiling the core failed" in str(e.value.code)
    assert not any("ustack.compiled" in cmd for cmd in ran)  # no "done", no check after


def _setup_module():
    """setup.py loaded as a module (not run as __main__: no setup() call)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ustack_setup", os.path.join(ROOT, "setup.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_setup_stops_when_cython_cannot_translate_a_module(tmp_path, monkeypatch):
    """Cython is there but a module does not translate (a .pxd that no longer matches its
    .py): the build stops non-zero naming the error, instead of building nothing and saying
    nothing, which left every old compiled module to be imported beside the new sources."""
    import types
    import pytest
    setup = _setup_module()
    fake = types.ModuleType("Cython.Build")

    def cythonize(*a, **kw):
        raise RuntimeError("core/tcp/x.pxd:3:0: C function has wrong signature")
    fake.cythonize = cythonize
    monkeypatch.setitem(sys.modules, "Cython.Build", fake)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        setup.extensions()
    assert "wrong signature" in str(e.value.code) and "Cython" in str(e.value.code)


def test_setup_without_cython_builds_the_pure_package(tmp_path, monkeypatch):
    setup = _setup_module()
    monkeypatch.setitem(sys.modules, "Cython.Build", None)   # import fails: no Cython
    monkeypatch.chdir(tmp_path)
    assert setup.extensions() == []
