"""Boot Debian's own kernel under QEMU (TCG) and run a host Python script inside it.

    from ustack.hal.sim.qemu import guest
    kernel, initrd = guest.build_initramfs()              # cached, keyed by kernel package
    text = guest.run_guest("tests/usbvm/guest_nic.py", timeout=90, args=["ecm"])

How it works (see /work/shared/HAL-NOTES.md section 3, "Real kernel in CI"):

* The kernel package is resolved with `apt-cache depends linux-image-amd64` (never a glob),
  fetched with `apt-get download` and unpacked with `dpkg -x`. Only vmlinuz and the modules
  below drivers/usb, drivers/net/usb, 9p, virtio and their dependency closure are kept, in
  <cache>/<package>/ (cache: $USTACK_USBVM_CACHE, else /var/cache/ustack-usbvm as root, else
  ~/.cache/ustack-usbvm). Module dependencies come from each .ko's .modinfo section, so
  neither kmod/depmod nor modules.dep is needed.
* The initramfs (written here as a newc cpio, no cpio tool) holds a static busybox, the
  modules to insmod in dependency order and an /init that mounts proc/sys/devtmpfs/configfs,
  loads the modules, mounts the host root read-only over virtio-9p at /host, mounts proc,
  sys, configfs, devtmpfs, devpts and a tmpfs (/dev/shm, also TMPDIR) inside it, and runs a
  per-run job script there with `chroot /host /bin/sh JOB`. The job script lives in
  <cache>/jobs/ (the guest sees it through 9p) and execs the host's Python on the script.
* The console is the serial port on QEMU's stdout; the guest ends with
  "USTACK-GUEST-EXIT rc=N" and powers off. QEMU runs with -accel tcg,thread=multi (KVM is
  not usable on the CI machines), -nic none: the guest has no network to the outside.

Everything that cannot be provided (not root, no apt, download fails, no qemu) raises
GuestUnavailable with a reason a test can pass to pytest.skip().
"""
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

APT_PACKAGES = ("qemu-system-x86", "busybox-static")
QEMU = "qemu-system-x86_64"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
META_PACKAGE = "linux-image-amd64"
LAYOUT_VERSION = 1   # bump when the kept file set / index format changes

# Loaded at boot (plus their dependencies), in this order after the dependencies.
DEFAULT_MODULES = (
    "virtio_pci", "9pnet_virtio", "9p",
    "configfs", "libcomposite", "dummy_hcd",
    "usb_f_ecm", "usb_f_ncm", "usb_f_eem", "usb_f_rndis", "usb_f_ecm_subset",
    "usbnet", "cdc_ether", "cdc_ncm", "cdc_eem", "rndis_host", "cdc_subset",
    "usbip_core", "vhci_hcd",
)
# Directories (below lib/modules/<kver>/kernel) whose modules are kept in the cache, so
# later tests can load e.g. r8152 or ax88179_178a without a new download.
KEEP_DIRS = ("drivers/usb", "drivers/net/usb", "net/9p", "fs/9p", "drivers/virtio")

MARK_EXIT = "USTACK-GUEST-EXIT rc="
MARK_READY = "ustack-guest: ready"


class GuestUnavailable(Exception):
    """The guest cannot be built or run on this machine (the message says why)."""


# --- small helpers -------------------------------------------------------------------------

def cache_dir(path=None):
    if path:
        return path
    env = os.environ.get("USTACK_USBVM_CACHE")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/cache/ustack-usbvm"
    return os.path.join(os.path.expanduser("~"), ".cache", "ustack-usbvm")


def _run(cmd, cwd=None, timeout=600):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


class _Lock:
    """An flock on <dir>/.lock so that two test runs don't build the cache at once."""

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        self.f = open(os.path.join(d, ".lock"), "w")

    def __enter__(self):
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _elf_is_static(path):
    """True for an ELF executable without PT_INTERP (a static binary)."""
    try:
        with open(path, "rb") as f:
            h = f.read(64)
            if h[:4] != b"\x7fELF" or h[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", h, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", h, 0x36)
            f.seek(phoff)
            ph = f.read(phentsize * phnum)
    except OSError:
        return False
    for i in range(phnum):
        if struct.unpack_from("<I", ph, i * phentsize)[0] == 3:  # PT_INTERP
            return False
    return True


def find_busybox():
    for p in BUSYBOX_PATHS:
        if os.path.exists(p) and _elf_is_static(p):
            return p
    return None


def _apt_install(pkgs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + list(pkgs)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=900)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    return r


def ensure_tools(install=True):
    """qemu-system-x86_64 and a static busybox, installed with apt-get when missing (root
    only). Returns (qemu_path, busybox_path); raises GuestUnavailable."""
    qemu = shutil.which(QEMU)
    bb = find_busybox()
    if qemu and bb:
        return qemu, bb
    missing = []
    if not qemu:
        missing.append("qemu-system-x86")
    if not bb:
        missing.append("busybox-static")
    if not install:
        raise GuestUnavailable("missing: %s" % " ".join(missing))
    if os.geteuid() != 0:
        raise GuestUnavailable("not root; cannot apt-get install %s" % " ".join(missing))
    if not shutil.which("apt-get"):
        raise GuestUnavailable("no apt-get to install %s" % " ".join(missing))
    r = _apt_install(missing)
    qemu = shutil.which(QEMU)
    bb = find_busybox()
    if not (qemu and bb):
        raise GuestUnavailable("apt-get install %s failed: %s" % (" ".join(missing), (r.stderr or r.stdout)[-400:]))
    return qemu, bb


def kernel_package():
    """The linux-image-<abi>-amd64 package that linux-image-amd64 depends on (or
    $USTACK_USBVM_KERNEL_PKG)."""
    env = os.environ.get("USTACK_USBVM_KERNEL_PKG")
    if env:
        return env
    if not shutil.which("apt-cache"):
        raise GuestUnavailable("no apt-cache to resolve %s" % META_PACKAGE)
    r = _run(["apt-cache", "depends", META_PACKAGE], timeout=120)
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:"):
            name = line.split(":", 1)[1].strip()
            if name.startswith("linux-image-") and not name.startswith("<"):
                return name
    raise GuestUnavailable("cannot resolve the kernel package of %s: %s"
                           % (META_PACKAGE, (r.stderr or r.stdout)[-300:]))


# --- kernel modules: .modinfo from the ELF files -------------------------------------------

def modinfo(path):
    """{key: [values]} from a .ko's .modinfo section."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("%s: not an ELF64 module" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sh(i):
        o = shoff + i * shentsize
        name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, o)
        return name, off, size

    _, stroff, _ = sh(shstrndx)
    out = {}
    for i in range(shnum):
        name, off, size = sh(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] != b".modinfo":
            continue
        for item in data[off:off + size].split(b"\0"):
            if b"=" in item:
                k, v = item.decode("utf-8", "replace").split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def _modname(fname):
    base = os.path.basename(fname)
    for suf in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        if base.endswith(suf):
            base = base[:-len(suf)]
    return base.replace("-", "_")


def _index_modules(moddir):
    """{name: {"path": relpath, "depends": [...], "softpre": [...]}} for every .ko below moddir."""
    idx = {}
    for root, _dirs, files in os.walk(moddir):
        for fn in files:
            if not fn.endswith(".ko"):
                continue
            p = os.path.join(root, fn)
            info = modinfo(p)
            deps = [d for d in ",".join(info.get("depends", [""])).split(",") if d]
            softpre = []
            for sd in info.get("softdep", []):
                words = sd.split()
                mode = None
                for w in words:
                    if w in ("pre:", "post:"):
                        mode = w
                    elif mode == "pre:":
                        softpre.append(w.replace("-", "_"))
            idx[_modname(fn)] = {"path": os.path.relpath(p, moddir), "depends": deps, "softpre": softpre}
    return idx


def load_order(index, wanted):
    """Modules to insmod (dependencies first) for the wanted names; unknown names are
    skipped silently when they are optional (built in or absent from this kernel)."""
    order = []
    seen = set()

    def visit(name, stack=()):
        name = name.replace("-", "_")
        if name in seen or name not in index:
            return
        if name in stack:
            return
        for d in index[name]["softpre"]:
            visit(d, stack + (name,))
        for d in index[name]["depends"]:
            visit(d, stack + (name,))
        seen.add(name)
        order.append(name)

    for w in wanted:
        visit(w)
    return order


def fetch_kernel(cache=None, package=None):
    """Download and unpack the kernel once; returns the kernel's cache directory holding
    vmlinuz, modules/ (flat .ko files) and index.json."""
    cache = cache_dir(cache)
    if os.geteuid() != 0:
        raise GuestUnavailable("not root")
    package = package or kernel_package()
    kdir = os.path.join(cache, package)
    stamp = os.path.join(kdir, "stamp.json")

    def ok():
        try:
            with open(stamp) as f:
                s = json.load(f)
            return s.get("layout") == LAYOUT_VERSION and os.path.exists(os.path.join(kdir, "vmlinuz"))
        except (OSError, ValueError):
            return False

    if ok():
        return kdir
    with _Lock(cache):
        if ok():
            return kdir
        for tool in ("apt-get", "dpkg"):
            if not shutil.which(tool):
                raise GuestUnavailable("no %s to fetch %s" % (tool, package))
        tmp = tempfile.mkdtemp(prefix="fetch-", dir=cache)
        try:
            os.chmod(tmp, 0o755)  # let apt's _apt user write there (avoids a warning)
            r = _run(["apt-get", "download", package], cwd=tmp, timeout=900)
            if r.returncode != 0:
                env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=900)
                r = _run(["apt-get", "download", package], cwd=tmp, timeout=900)
            debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
            if r.returncode != 0 or len(debs) != 1:
                raise GuestUnavailable("apt-get download %s failed: %s" % (package, (r.stderr or r.stdout)[-400:]))
            deb = os.path.join(tmp, debs[0])
            version = _run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()
            x = os.path.join(tmp, "x")
            r = _run(["dpkg", "-x", deb, x], timeout=600)
            if r.returncode != 0:
                raise GuestUnavailable("dpkg -x %s failed: %s" % (debs[0], r.stderr[-400:]))
            os.unlink(deb)
            kvers = os.listdir(os.path.join(x, "lib", "modules"))
            if len(kvers) != 1:
                raise GuestUnavailable("unexpected module trees in %s: %s" % (package, kvers))
            kver = kvers[0]
            vmlinuz = os.path.join(x, "boot", "vmlinuz-" + kver)
            moddir = os.path.join(x, "lib", "modules", kver, "kernel")
            full = _index_modules(moddir)
            keep = set()
            for name, ent in full.items():
                if any(ent["path"].startswith(d + "/") for d in KEEP_DIRS):
                    keep.add(name)
            keep |= set(load_order(full, sorted(keep) + list(DEFAULT_MODULES)))
            new = kdir + ".new"
            shutil.rmtree(new, ignore_errors=True)
            os.makedirs(os.path.join(new, "modules"))
            shutil.copy(vmlinuz, os.path.join(new, "vmlinuz"))
            index = {}
            for name in sorted(keep):
                ent = dict(full[name])
                shutil.copy(os.path.join(moddir, ent["path"]), os.path.join(new, "modules", name + ".ko"))
                index[name] = ent
            with open(os.path.join(new, "index.json"), "w") as f:
                json.dump(index, f, indent=0, sort_keys=True)
            with open(os.path.join(new, "stamp.json"), "w") as f:
                json.dump({"layout": LAYOUT_VERSION, "package": package, "version": version,
                           "kernel": kver, "modules": len(index)}, f)
            shutil.rmtree(kdir, ignore_errors=True)
            os.rename(new, kdir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return kdir


def kernel_info(kdir):
    with open(os.path.join(kdir, "stamp.json")) as f:
        return json.load(f)


# --- initramfs -----------------------------------------------------------------------------

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
while read m; do
  insmod /lib/modules/$m.ko 2>/tmp/insmod.err || echo "ustack-guest: insmod $m failed: $(cat /tmp/insmod.err)"
done < /etc/modules.load
mount -t configfs configfs /sys/kernel/config
ip link set lo up
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host; then
  echo "ustack-guest: cannot mount the host root over 9p"
  echo "USTACK-GUEST-EXIT rc=125"
  poweroff -f
fi
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t configfs configfs /host/sys/kernel/config
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/shm /host/dev/pts
mount -t tmpfs -o size=256m tmpfs /host/dev/shm
mount -t devpts devpts /host/dev/pts
job=""
for w in $(cat /proc/cmdline); do
  case "$w" in ustack_job=*) job="${w#ustack_job=}";; esac
done
echo "ustack-guest: ready kernel=$(uname -r) modules_loaded_at=${t0}s now=$(cut -d' ' -f1 /proc/uptime)s"
if [ -n "$job" ]; then
  chroot /host /bin/sh "$job"
  rc=$?
else
  echo "ustack-guest: no ustack_job= on the kernel command line"
  rc=124
fi
echo "USTACK-GUEST-EXIT rc=$rc"
poweroff -f
"""


class _Cpio:
    """newc cpio writer (what the kernel unpacks as an initramfs)."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def _add(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
        self.ino += 1
        self.out += hdr.encode() + nb
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def dir(self, name):
        self._add(name, 0o040755, nlink=2)

    def file(self, name, data, perm=0o644):
        self._add(name, 0o100000 | perm, data)

    def symlink(self, name, target):
        self._add(name, 0o120777, target.encode())

    def chardev(self, name, major, minor, perm=0o600):
        self._add(name, 0o020000 | perm, rdev=(major, minor))

    def finish(self):
        self._add("TRAILER!!!", 0, nlink=1)
        self.out += b"\0" * (-len(self.out) % 512)
        return bytes(self.out)


def build_initramfs(cache=None, modules=DEFAULT_MODULES, package=None):
    """(vmlinuz path, initrd path), building and caching what is missing. The initrd is
    keyed by its content (init script, module list, busybox), next to the kernel it is for."""
    _qemu, busybox = ensure_tools()
    kdir = fetch_kernel(cache, package)
    with open(os.path.join(kdir, "index.json")) as f:
        index = json.load(f)
    order = load_order(index, modules)
    with open(busybox, "rb") as f:
        bb = f.read()
    key = hashlib.sha256(INIT.encode() + "\n".join(order).encode() + hashlib.sha256(bb).digest()).hexdigest()[:16]
    initrd = os.path.join(kdir, "initrd-%s.cpio.gz" % key)
    if os.path.exists(initrd):
        return os.path.join(kdir, "vmlinuz"), initrd
    with _Lock(cache_dir(cache)):
        if not os.path.exists(initrd):
            c = _Cpio()
            for d in ("bin", "dev", "proc", "sys", "tmp", "host", "etc", "lib", "lib/modules"):
                c.dir(d)
            c.chardev("dev/console", 5, 1)
            c.chardev("dev/null", 1, 3, 0o666)
            c.file("bin/busybox", bb, 0o755)
            c.symlink("bin/sh", "busybox")
            c.file("init", INIT.encode(), 0o755)
            c.file("etc/modules.load", ("\n".join(order) + "\n").encode())
            for m in order:
                with open(os.path.join(kdir, "modules", m + ".ko"), "rb") as f:
                    c.file("lib/modules/%s.ko" % m, f.read())
            tmp = initrd + ".tmp%d" % os.getpid()
            with open(tmp, "wb") as f:
                f.write(gzip.compress(c.finish(), 6))
            os.rename(tmp, initrd)
    return os.path.join(kdir, "vmlinuz"), initrd


# --- running -------------------------------------------------------------------------------

def _job_script(script, args, python, cwd, env):
    lines = ["#!/bin/sh", "cd %s || exit 126" % _q(cwd)]
    base = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/dev/shm",
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "USTACK_IN_GUEST": "1"}
    base.update(env or {})
    for k, v in base.items():
        lines.append("export %s=%s" % (k, _q(v)))
    lines.append("exec %s" % " ".join(_q(a) for a in [python, script] + list(args)))
    return "\n".join(lines) + "\n"


def _q(s):
    s = str(s)
    return "'" + s.replace("'", "'\\''") + "'"


def qemu_command(kernel, initrd, job, smp=2, mem=1024, append=""):
    qemu, _bb = ensure_tools()
    # no_timer_check: a starved TCG guest otherwise fails the IO-APIC timer check at boot and
    # panics ("IO-APIC + timer doesn't work!"); seen with the host's 2 cores busy
    cmdline = "console=ttyS0 rdinit=/init panic=-1 loglevel=4 no_timer_check ustack_job=%s %s" % (job, append)
    return [
        qemu, "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", str(smp), "-m", str(mem),
        "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
        "-serial", "stdio", "-no-reboot", "-nic", "none",
        "-kernel", kernel, "-initrd", initrd, "-append", cmdline.strip(),
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    ]


class GuestRun:
    """Result of run_guest: console text, exit code of the script (None if not seen),
    wall-clock timings."""

    def __init__(self):
        self.console = ""
        self.rc = None
        self.timed_out = False
        self.boot_s = None      # until the init said "ready" (modules loaded, 9p mounted)
        self.total_s = None
        self.qemu_rc = None
        self.command = None

    def __str__(self):
        return self.console


def run_guest(script_path, timeout=120, args=(), python=None, cwd=None, env=None, cache=None,
              modules=DEFAULT_MODULES, smp=2, mem=1024, echo=None, log_path=None):
    """Boot the guest, run `python script_path args...` in it (chrooted into the read-only
    host root) and return the console text. See run_guest_ex() for exit code and timings."""
    return run_guest_ex(script_path, timeout, args, python, cwd, env, cache, modules, smp, mem,
                        echo, log_path).console


def run_guest_ex(script_path, timeout=120, args=(), python=None, cwd=None, env=None, cache=None,
                 modules=DEFAULT_MODULES, smp=2, mem=1024, echo=None, log_path=None):
    """Like run_guest() but returns a GuestRun. echo: a callable getting each console line
    as it arrives (e.g. print for live output); log_path: also write the console there."""
    kernel, initrd = build_initramfs(cache, modules)
    script_path = os.path.abspath(script_path)
    python = python or sys.executable
    cwd = os.path.abspath(cwd or os.getcwd())
    jobs = os.path.join(cache_dir(cache), "jobs")
    os.makedirs(jobs, exist_ok=True)
    fd, job = tempfile.mkstemp(prefix="job-", suffix=".sh", dir=jobs)
    with os.fdopen(fd, "w") as f:
        f.write(_job_script(script_path, args, python, cwd, env))
    os.chmod(job, 0o755)
    if any(c.isspace() for c in job):
        os.unlink(job)
        raise GuestUnavailable("cache path has whitespace: %r" % job)
    res = GuestRun()
    res.command = qemu_command(kernel, initrd, job, smp, mem)
    lines = []
    log = open(log_path, "w") if log_path else None
    t0 = time.monotonic()
    try:
        try:
            p = subprocess.Popen(res.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        except OSError as e:
            raise GuestUnavailable("cannot start %s: %s" % (QEMU, e))

        def reader():
            for raw in iter(p.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").replace("\r", "")
                lines.append(line)
                if res.boot_s is None and MARK_READY in line:
                    res.boot_s = time.monotonic() - t0
                if log:
                    log.write(line)
                    log.flush()
                if echo:
                    echo(line.rstrip("\n"))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        try:
            res.qemu_rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            res.timed_out = True
        finally:
            if p.poll() is None:  # timeout or KeyboardInterrupt: end our own child, by handle
                p.kill()
                res.qemu_rc = p.wait()
        th.join(5)
    finally:
        res.total_s = time.monotonic() - t0
        if log:
            log.close()
        try:
            os.unlink(job)
        except OSError:
            pass
    text = "".join(lines)
    if res.timed_out:
        text += "\n[run_guest: timed out after %.0f s; qemu killed]\n" % timeout
    for line in lines:
        if line.startswith(MARK_EXIT):
            try:
                res.rc = int(line[len(MARK_EXIT):].split()[0])
            except ValueError:
                pass
    if res.qemu_rc and res.rc is None and not res.timed_out and MARK_READY not in text:
        # qemu itself failed (bad option, no TCG, ...): not the test's fault
        raise GuestUnavailable("%s exited with %s: %s" % (QEMU, res.qemu_rc, text[-600:]))
    res.console = text
    return res


def main(argv=None):
    """python -m ustack.hal.sim.qemu.guest SCRIPT [ARGS...]: run a script in the guest."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__)
        return 2
    if argv[0] == "--build":
        k, i = build_initramfs()
        print(k, i, kernel_info(os.path.dirname(k)))
        return 0
    r = run_guest_ex(argv[0], args=argv[1:], echo=print)
    print("[guest rc=%s boot=%.1fs total=%.1fs]" % (r.rc, r.boot_s or -1, r.total_s))
    return 0 if r.rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
