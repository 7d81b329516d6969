"""Package build: maps the top-level rooms onto the `ustack` import package and compiles
`core/` with Cython (augmenting .pxd files beside the pure .py) when a compiler is present.
Set USTACK_NO_CYTHON=1 to build the pure-Python package."""
import glob
import os

from setuptools import setup
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
    link = os.path.join(pkg, "core")
    if not os.path.islink(link):
        os.symlink(os.path.abspath("core"), link)
    exts = [Extension("ustack." + p[:-3].replace(os.sep, "."), [os.path.join(pkg, p)]) for p in srcs]
    try:
        return cythonize(exts, language_level=3, quiet=True, include_path=[tree], nthreads=os.cpu_count() or 1,
                         compiler_directives={"boundscheck": False, "wraparound": False,
                                              "cdivision": True})
    except Exception as e:  # no compiler, bad Cython: fall back to pure Python
        print("ustack: Cython build skipped:", e)
        return []


PKGS = packages()
setup(packages=sorted(PKGS), package_dir=PKGS, ext_modules=extensions(),
      cmdclass={"build_py": BuildPy})
