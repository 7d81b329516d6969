"""Host side (CPython): third-party MicroPython libraries from PyPI, unmodified, in a folder
the unix port puts on its path (tests/micropython/test_libs_mpy.py runs them over ustack).

    python -m ustack.ports.micropython.thirdparty [DEST]     # what .ci/setup runs
    lib = thirdparty.ensure()                                # -> DEST, fetched once

- microdot comes with pip (the `mpy` extra of pyproject.toml pins it): its package folder
  is copied from where pip installed it.
- micropython-urequests and micropython-umqtt.simple are the old micropython-lib sdists:
  tarballs without setup.py that pip refuses ("does not appear to be a Python project";
  upip, MicroPython's client for them, is gone). They are taken from PyPI's simple index
  as pip finds them (PEP 503), checked against the SHA-256 pinned here, and their .py files
  unpacked. Nothing in them is changed.

DEST defaults to $USTACK_MPY_THIRDPARTY, else .venv/mpy-thirdparty in the checkout.
"""
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _index():
    """The package index pip itself uses (PIP_INDEX_URL, pip's config, else pip's default):
    the same registry `pip install` reaches, named by pip rather than by us."""
    url = os.environ.get("PIP_INDEX_URL", "").split(" ")[0]
    if not url:
        import subprocess
        r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                           capture_output=True, text=True)
        url = r.stdout.strip() if r.returncode == 0 else ""
    if not url:
        from pip._internal.models.index import PyPI
        url = PyPI.simple_url
    return url.rstrip("/") + "/%s/"

# (PyPI project, sdist file, sha256, the module files to take: archive path -> dest path)
SDISTS = (
    ("micropython-urequests", "micropython-urequests-0.9.1.tar.gz",
     "15ed0132bcff1a84e87049d9d7780ce26df0810fa674aa89d187e17493d6e3c5",
     {"micropython-urequests-0.9.1/urequests/__init__.py": "urequests.py"}),
    ("micropython-umqtt-simple", "micropython-umqtt.simple-1.3.4.tar.gz",
     "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f",
     {"micropython-umqtt.simple-1.3.4/umqtt/simple.py": "umqtt/simple.py"}),
)
PIP_PACKAGES = ("microdot",)   # installed by pip (pyproject.toml `mpy` extra)
MICRODOT_FILES = ("__init__.py", "microdot.py", "helpers.py")


def default_dest():
    return os.environ.get("USTACK_MPY_THIRDPARTY") or os.path.join(ROOT, ".venv",
                                                                   "mpy-thirdparty")


def ensure(dest=None):
    """dest with urequests.py, umqtt/simple.py and microdot/ (fetched when missing)."""
    dest = dest or default_dest()
    os.makedirs(dest, exist_ok=True)
    for project, fname, sha, files in SDISTS:
        if all(os.path.exists(os.path.join(dest, d)) for d in files.values()):
            continue
        _unpack(_fetch_sdist(project, fname, sha), files, dest)
    _copy_microdot(dest)
    return dest


def _fetch_sdist(project, fname, sha):
    import urllib.request
    index = _index() % project
    page = urllib.request.urlopen(index, timeout=60).read().decode()
    for href in re.findall(r'href="([^"]+)"', page):
        url = href.split("#", 1)[0]
        if url.endswith("/" + fname):
            if not url.startswith("http"):
                url = urllib.request.urljoin(index, url)
            data = urllib.request.urlopen(url, timeout=60).read()
            got = hashlib.sha256(data).hexdigest()
            if got != sha:
                raise RuntimeError("%s: sha256 %s, pinned %s" % (fname, got, sha))
            return data
    raise RuntimeError("%s not in PyPI's index for %s" % (fname, project))


def _unpack(data, files, dest):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for src, dst in files.items():
            f = tf.extractfile(src)
            out = os.path.join(dest, dst)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as o:
                o.write(f.read())
            if dst.startswith("umqtt/"):
                open(os.path.join(dest, "umqtt", "__init__.py"), "a").close()


def _copy_microdot(dest):
    import importlib.util
    out = os.path.join(dest, "microdot")
    if all(os.path.exists(os.path.join(out, n)) for n in MICRODOT_FILES):
        return
    spec = importlib.util.find_spec("microdot")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("microdot is not installed: pip install -e '.[mpy]'")
    src = list(spec.submodule_search_locations)[0]
    os.makedirs(out, exist_ok=True)
    for n in MICRODOT_FILES:
        shutil.copyfile(os.path.join(src, n), os.path.join(out, n))


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else None))
