"""Package build: maps the top-level rooms onto the `ustack` import package and compiles
`core/` and the CPython I/O path (CPYTHON_IO) with Cython (augmenting .pxd files beside the pure .py) when a compiler is present.
Set USTACK_NO_CYTHON=1 to build the pure-Python package. Extension modules are stripped
(no debug information: about a tenth of the size), in place and in the wheel alike.

    pip wheel . --no-deps --no-build-isolation -w dist    # the wheel, from the dev venv
"""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOMS = ("core", "hal", "boards", "ports")


def packages():
    pkgs = {"ustack": "."}
    for room in ROOMS:
        for d, _dirs, files in os.walk(room):
            if "__init__.py" in files and "__pycache__" not in d:
                pkgs["ustack." + d.replace(os.sep, ".")] = d
    return pkgs


class BuildPy(build_py):
    """The root package is the repo root: ship only its __init__.py, not tasks.py/setup.py."""

    def find_package_modules(self, package, package_dir):
        mods = super().find_package_modules(package, package_dir)
        if package == "ustack":
            mods = [m for m in mods if m[1] == "__init__"]
        return mods


class BuildExt(build_ext):
    """Strips every extension module it builds or reuses from build/ (an unstripped one from an
    older build must not reach a wheel); compiles on every core unless told otherwise."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extension(self, ext):
        super().build_extension(ext)
        strip(self.get_ext_fullpath(ext.name))


def strip(path):
    """Remove symbols and debug information the module does not need to load."""
    tool = shutil.which("strip")
    if tool is None or sys.platform == "win32" or not os.path.exists(path):
        return
    flag = "-x" if sys.platform == "darwin" else "--strip-unneeded"
    r = subprocess.run([tool, flag, path], capture_output=True, text=True)
    if r.returncode:  # a module that loads is worth more than a small one
        print("ustack: %s not stripped: %s" % (path, r.stderr.strip()))


# the CPython-only I/O path, compiled like core/ (issue 13: every frame crossed it as
# bytecode): the TAP driver and its system calls, its steering, the runner's wait and step,
# the services' hooks. Each has a pure .py (USTACK_PURE=1, no Cython: the same behaviour)
# and may have an augmenting .pxd beside it; hal/tapio's compiled form is a .pyx of its own
# (C system calls) beside its pure .py. MicroPython never imports them
CPYTHON_IO = ("hal/tap.py", "hal/tapio.pyx", "hal/tapsteer.py", "ports/cpython/runner.py",
              "ports/cpython/services.py", "ports/cpython/tcp_services.py")


def extensions():
    if os.environ.get("USTACK_NO_CYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    srcs = [p for p in glob.glob("core/**/*.py", recursive=True)
            if not p.endswith("__init__.py") and "_viper" not in p]
    from setuptools import Extension
    # Cython finds an augmenting .pxd by the module's qualified name (ustack/core/x.pxd), so
    # it compiles the sources through a tree shaped like the installed package.
    tree = os.path.join("build", "cy")
    pkg = os.path.join(tree, "ustack")
    os.makedirs(pkg, exist_ok=True)
    open(os.path.join(pkg, "__init__.py"), "a").close()
    for room in ("core", "hal", "ports"):
        link = os.path.join(pkg, room)
        # a link left by a copied or moved checkout points at another tree's sources: renew it
        if os.path.islink(link) and os.readlink(link) != os.path.abspath(room):
            os.unlink(link)
        if not os.path.islink(link):
            os.symlink(os.path.abspath(room), link)
    # no debug information to start with (it would be stripped anyway, and costs compile time)
    cflags = [] if sys.platform == "win32" else ["-g0"]

    def exts(paths):
        return [Extension("ustack." + os.path.splitext(p)[0].replace(os.sep, "."),
                          [os.path.join(pkg, p)],
                          extra_compile_args=cflags) for p in paths]
    try:
        core = cythonize(exts(srcs), language_level=3, quiet=True, include_path=[tree],
                         nthreads=os.cpu_count() or 1,
                         compiler_directives={"boundscheck": False, "wraparound": False,
                                              "nonecheck": True, "cdivision": True})
        # the I/O path keeps Python's indexing (its queue lists are read from the end: l[-1])
        io = cythonize(exts(CPYTHON_IO), language_level=3, quiet=True, include_path=[tree],
                       nthreads=os.cpu_count() or 1,
                       compiler_directives={"nonecheck": True, "cdivision": True})
        exts = core + io
    except Exception as e:
        # Cython is here but a module does not translate: building nothing would leave the
        # old compiled modules beside the new sources, and they would be imported. Stop.
        sys.exit("ustack: Cython could not translate the core: %s" % e)
    return exts + dpdk_extension(cythonize, Extension)


def pkg_config(*args):
    """pkg-config's answer split into arguments, or None (no pkg-config, no such package)."""
    tool = shutil.which("pkg-config")
    if tool is None:
        return None
    r = subprocess.run([tool] + list(args), capture_output=True, text=True)
    return r.stdout.split() if r.returncode == 0 else None


def dpdk_extension(cythonize, Extension):
    """hal/dpdk's binding, only where DPDK's headers are (Debian: libdpdk-dev, pkg-config
    libdpdk); optional: a failure to compile it leaves the driver out, not the core."""
    cflags = pkg_config("--cflags", "libdpdk")
    libs = pkg_config("--libs", "libdpdk")
    if cflags is None or libs is None:
        return []
    ext = Extension("ustack.hal.dpdk._rte", ["hal/dpdk/_rte.pyx"], optional=True,
                    extra_compile_args=cflags + ["-g0", "-Wno-deprecated-declarations"],
                    extra_link_args=libs)
    try:
        return cythonize([ext], language_level=3, quiet=True)
    except Exception as e:
        print("ustack: DPDK binding skipped:", e)
        return []


# folders of files the package uses at run time that are not imported as a package: the
# demo's web root (so `python -m ustack.ports.cpython.demo` works from a pip install) and the
# MicroPython shadow modules a board copies to /lib; and the MicroPython port's README
DATA_DIRS = ("ports/cpython/demo_www", "ports/micropython/shadow")
PKGS = packages()
PKGS.update(("ustack." + d.replace("/", "."), d) for d in DATA_DIRS)
DATA = {"ustack.ports.cpython.demo_www": ["*.html"], "ustack.ports.micropython": ["README.md"]}
if __name__ == "__main__":  # (pip's build backend runs it so too; tests import it)
    setup(packages=sorted(PKGS), package_dir=PKGS, package_data=DATA,
          ext_modules=extensions(), cmdclass={"build_py": BuildPy, "build_ext": BuildExt})
