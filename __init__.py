"""ustack: a portable TCP/IP stack. `ustack.compiled` says whether the core and the CPython I/O
path (TAP driver, runner, services) run Cython-compiled.

USTACK_PURE=1 in the environment forces the pure-Python modules even where compiled ones exist
(so one checkout can run the test suite in both modes).

Importing the package does as little as it can (issue 11: `ustack up` catches its signals
from the first line of ports/cpython/cli.py on, and everything before that line is a window
where Ctrl-C ends Python's start-up with a traceback): `compiled` and `__version__` are
worked out on first use (PEP 562 module __getattr__), and nothing beyond os and sys (which
Python's start-up has loaded already) is imported here."""
import os as _os
import sys as _sys

if _os.environ.get("USTACK_PURE"):
    import importlib.util as _m

    class _PureCore:
        """Finds ustack.core.* and the compiled I/O path (ustack.hal.*, ustack.ports.*) as
        source, skipping extension modules (one without a .py, hal/dpdk's binding, loads)."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if not name.startswith(("ustack.core.", "ustack.hal.", "ustack.ports.")) or not path:
                return None
            leaf = name.rpartition(".")[2]
            for d in path:
                src = _os.path.join(d, leaf + ".py")
                if _os.path.exists(src):
                    return _m.spec_from_file_location(name, src)
            return None

    _sys.meta_path.insert(0, _PureCore)


# the CPython I/O path setup.py compiles beside core/ (its CPYTHON_IO)
_IO = ("ustack.hal.tap", "ustack.hal.tapio", "ustack.hal.tapsteer", "ustack.ports.cpython.runner",
       "ustack.ports.cpython.services", "ustack.ports.cpython.tcp_services")


def _compiled():
    """The core and the I/O path both compiled (a build that left either as .py says False);
    the I/O modules are found, not imported."""
    from ustack.core import checksum
    if checksum.__file__.endswith(".py"):
        return False
    from importlib.util import find_spec
    for name in _IO:
        spec = find_spec(name)
        if spec is None or spec.origin is None or spec.origin.endswith(".py"):
            return False
    return True


def _version():
    """The version is written once, in pyproject.toml: a checkout reads it there, an installed
    package from its metadata (made from the same line by the build)."""
    here = _os.path.dirname(_os.path.abspath(__file__))
    try:
        with open(_os.path.join(here, "pyproject.toml")) as f:
            for line in f:
                if line.startswith("version") and "=" in line:
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:  # installed: no pyproject.toml beside the package
        pass
    try:
        from importlib.metadata import version
        return version("ustack")
    except Exception:  # neither (copied by hand): say so rather than guess
        return "unknown"


_LAZY = {"compiled": _compiled, "__version__": _version}


def __getattr__(name):
    """`ustack.compiled`, `ustack.__version__`: computed once, on first use."""
    make = _LAZY.get(name)
    if make is None:
        raise AttributeError("module 'ustack' has no attribute %r" % (name,))
    v = make()
    globals()[name] = v
    return v


def patch(host=None, **open_stack_args):
    """Make `import socket` in this process use ustack (CPython): takes open_stack's arguments
    (tap, ip, host_ip, gateway, mac, board, driver, pcap, config, mtu) or a running Host.
    See ustack.ports.cpython.socketmod for what can't be patched."""
    from ustack.ports.cpython.socketmod import patch as _patch
    return _patch(host, **open_stack_args)


if _sys.implementation.name == "cpython":
    class _Alias:
        """`import ustack.socket` gives the drop-in socket module, `ustack.asyncio` the asyncio
        entry points (both kept in ports/cpython). A finder and loader without importlib.abc
        and importlib.machinery (not loaded at start-up: importing them costs milliseconds)."""
        NAMES = {"ustack.socket": "ustack.ports.cpython.socketmod",
                 "ustack.asyncio": "ustack.ports.cpython.aio"}

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name in cls.NAMES:
                from importlib.util import spec_from_loader
                return spec_from_loader(name, cls())
            return None

        def create_module(self, spec):
            import importlib
            return importlib.import_module(self.NAMES[spec.name])

        def exec_module(self, module):
            pass

    _sys.meta_path.append(_Alias)
