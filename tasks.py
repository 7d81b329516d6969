"""invoke tasks: build, test, demo, bench, mpy, deploy, hil. `invoke --list` shows them."""
import os
import sys

from invoke import task

ROOT = os.path.dirname(os.path.abspath(__file__))
PY = os.path.join(ROOT, ".venv", "bin", "python")
if not os.path.exists(PY):
    PY = sys.executable


def step(task_name, msg):
    """A progress line of a long task, before the step it names."""
    print("%s: %s" % (task_name, msg), flush=True)


class Progress:
    """Stands in for a command's stdout: shows only the lines naming the module being built
    (setuptools' `building 'ustack.core.x' extension`), each as one progress line."""

    def __init__(self, task_name):
        self.task_name = task_name
        self.part = ""
        self.n = 0

    def write(self, text):
        self.part += text
        while "\n" in self.part:
            line, self.part = self.part.split("\n", 1)
            if line.startswith("building '"):
                self.n += 1
                step(self.task_name, "compiling %s (%d)" % (line.split("'")[1], self.n))

    def flush(self):
        pass


# what `build` compiles from pure .py (setup.py: core/ and CPYTHON_IO in hal/ and ports/)
# and its C: every such .so and .c (hal/dpdk's binding, which has no pure form, only by clean)
REMOVE_COMPILED = ("find core hal ports ! -path 'hal/dpdk/*' \\( -name '*.so' -o -name '*.c' \\) "
                   "-delete")


@task(help={"pure": "remove the compiled modules instead (pure-Python core)"})
def build(c, pure=False):
    """Compile the core and the CPython I/O path with Cython in place (falls back to pure
    Python without a compiler)."""
    with c.cd(ROOT):
        if pure:
            step("build", "removing the compiled core and I/O path (pure Python from now on)")
            c.run(REMOVE_COMPILED)
            return
        step("build", "Cython: core/ to C, then C to extension modules on %d cores (a few "
                      "minutes the first time; only changed modules after)" % (os.cpu_count() or 1))
        r = c.run("%s setup.py build_ext --inplace -j %d" % (PY, os.cpu_count() or 1),
                  out_stream=Progress("build"), warn=True)
        if r.exited:
            # setup.py itself builds pure Python where no compiler is: a failure here is a
            # module that did not compile, and its old .so would still be imported
            sys.exit("build: compiling the core failed (exit %d; the errors are above)"
                     % r.exited)
        step("build", "done; checking which core is imported")
        c.run("%s -c \"import ustack; print('core compiled:', ustack.compiled)\"" % PY)
        # hal/dpdk's binding: built where DPDK's headers are (libdpdk-dev, pkg-config)
        c.run("%s -c \"import importlib.util as u; print('DPDK binding:', 'built' if "
              "u.find_spec('ustack.hal.dpdk._rte') else 'not built (no libdpdk-dev)')\"" % PY)


@task
def clean(c):
    """Remove build products (compiled modules, build/, caches)."""
    with c.cd(ROOT):
        c.run("rm -rf build dist *.egg-info .pytest_cache")
        c.run(REMOVE_COMPILED)
        c.run("rm -f hal/dpdk/_rte.c hal/dpdk/_rte.*.so")


@task(help={"k": "pytest -k expression", "mode": "pure, compiled or both (default both)",
            "path": "test path (default tests)"})
def test(c, k="", mode="both", path="tests"):
    """The whole suite on the compiled core, then the unit tests on the pure-Python core."""
    sel = ("-k '%s'" % k) if k else ""
    if os.environ.get("CI"):
        os.environ["USTACK_NO_SKIPS"] = "1"  # CI has root, micropython, QEMU: every tier runs
    with c.cd(ROOT):
        if mode in ("both", "compiled"):
            build(c)
            failed = 0
            for what, opts in _phases():
                step("test", what)
                r = c.run("%s -m pytest -q --durations=15 %s %s %s" % (PY, opts, path, sel),
                          pty=False, warn=True)
                # 5: nothing selected in this part (a path or -k without any `alone` test)
                if r.exited not in (0, 5):
                    failed = r.exited
            if failed:
                sys.exit(failed)
        if mode in ("both", "pure"):
            c.run("USTACK_PURE=1 %s -m pytest -q tests/unit %s" % (PY, sel), pty=False)


# CI has 2 cores, but most of the suite waits on timers, daemons, guests and ptys: a whole
# CI run used about one core on average with two workers. A third keeps both cores busy; the
# timing-bound tests still run by themselves afterwards (marked alone).
TEST_WORKERS = 3


def _phases():
    """The compiled-core run: the suite on TEST_WORKERS pytest-xdist workers (each module on
    one of them: its module fixtures are made once), then the tests marked `alone` (floods
    beside ping, timed ratios: tests/conftest.py ALONE) with the machine to themselves.
    Without xdist: one plain run."""
    import importlib.util
    if importlib.util.find_spec("xdist") is None:
        return [("the suite (pytest-xdist missing: one worker)", "")]
    return [("the suite on %d workers, the timing-bound tests left for after" % TEST_WORKERS,
             "-n %d --dist loadfile --no-loadscope-reorder -m 'not alone'" % TEST_WORKERS),
            ("the timing-bound tests (marked alone), by themselves", "-m alone")]


@task
def demo(c):
    """The stack on a TAP in its own namespace answering ping, UDP echo and HTTP."""
    with c.cd(ROOT):
        c.run("%s -m ustack.ports.cpython.demo" % PY, pty=sys.stdin.isatty())


@task(help={"quick": "shorter runs (for CI smoke)", "out": "results file (markdown)",
            "runtime": "cpython (default) or micropython",
            "readme": "also show the results in README.md (not done unless asked)",
            "impaired": "also ustack vs Linux over one impaired path (vde2 wirefilter: loss, "
                        "delay; benchmarks/impaired.md; ~10 min, 2 min with --quick)",
            "offload": "also a 'ustack compiled + offloads' column (ustack up --offload; n/a "
                       "where this ustack has no such flag)"})
def bench(c, quick=False, out="", runtime="cpython", readme=False, impaired=False, offload=False):
    """Benchmarks: every stack (ustack compiled, pure, MicroPython; lwIP, PyTCP, Linux over
    veth) from the same Linux client in one run (benchmarks/results.md and .json), and more
    tables in benchmarks/ (with --readme, in README.md too)."""
    out = out or ("benchmarks/results.md" if runtime == "cpython" else
                  "benchmarks/results-%s.md" % runtime)
    floods = "benchmarks/floods.md" if runtime == "cpython" else "benchmarks/floods-%s.md" % runtime
    shown = " --readme" if readme else ""
    steps = [("seeded simulator: TCP goodput against loss (benchmarks/loss.md)",
              "%s -m benchmarks.loss_table" % PY)]
    if runtime == "cpython":
        steps.append(("frames/s through each driver and its virtual device (benchmarks/drivers.md)",
                      "%s -m benchmarks.drivers%s%s" % (PY, " --count 500" if quick else "", shown)))
    else:
        steps.append(("code size and heap per board (benchmarks/memory.md)",
                      "%s -m benchmarks.memory%s" % (PY, shown)))
    # hping3 floods, 30 s each (3 s with --quick)
    steps.append(("hping3 floods, %d s each (%s)" % (3 if quick else 30, floods),
                  "%s -m benchmarks.floods --secs %d --runtime %s --out %s%s" % (
                      PY, 3 if quick else 30, runtime, floods,
                      shown if runtime == "cpython" else "")))  # README shows CPython's
    # one run, every stack beside the same client (MicroPython is one of its columns)
    if runtime == "cpython":
        steps.append(("every stack from the same client: ustack, lwIP, PyTCP, Linux over veth; "
                      "ping, TCP, UDP, iperf3, wrk (%s, %s; ~10 min, 2 with --quick)"
                      % (out, os.path.splitext(out)[0] + ".json"),
                      "%s -m benchmarks.bench%s%s --out %s%s" % (
                          PY, " --quick" if quick else "", " --offload" if offload else "",
                          out, shown)))
    else:
        # the MicroPython column beside lwIP and Linux (README's table is the CPython run's)
        steps.append(("ustack on MicroPython, lwIP, Linux over veth from the same client (%s)"
                      % out, "%s -m benchmarks.bench%s --stacks micropython,lwip,linux --out %s"
                      % (PY, " --quick" if quick else "", out)))
    if runtime == "cpython":
        # unmodified programs over ustack: uiperf3 vs iperf3 -c, http.server 100 MB
        steps.append(("unmodified programs over ustack: uiperf3, http.server (benchmarks/programs.md)",
                      "%s -m benchmarks.programs%s%s" % (PY, " --quick" if quick else "", shown)))
    if runtime == "cpython":
        # issue 13: many idle connections held (bytes each, connections/s)
        steps.append(("idle TCP connections held by the stack (benchmarks/idle.md)",
                      "%s -m benchmarks.idle_conns%s%s" % (PY, " --quick" if quick else "",
                                                           shown)))
        # issue 14: forwarding between two Linux hosts, through ustack and through Linux
        steps.append(("forwarding through ustack and through Linux (benchmarks/forwarding.md)",
                      "%s -m benchmarks.forwarding%s%s" % (PY, " --quick" if quick else "", shown)))
    if impaired and runtime == "cpython":
        # issue 12: goodput through loss and delay, ustack beside Linux->Linux on the same path
        steps.append(("ustack and Linux over one impaired path (benchmarks/impaired.md)",
                      "%s -m benchmarks.impaired%s%s" % (PY, " --quick" if quick else "", shown)))
    with c.cd(ROOT):
        for i, (what, cmd) in enumerate(steps):
            step("bench", "[%d/%d] %s" % (i + 1, len(steps), what))
            c.run(cmd)
    step("bench", "done; README.md %s" % ("updated" if readme else
                                          "unchanged (invoke bench --readme shows the results there)"))


@task(help={"board": "board name in boards/ (default unix)", "out": "output directory",
            "opt": "mpy-cross -O level (3: no line numbers, smaller code; default the board's)"})
def mpy(c, board="unix", out="build/mpy", opt=""):
    """Compile the modules a board needs with mpy-cross and report the .mpy size."""
    step("mpy", "compiling the modules board %s needs with mpy-cross into %s/%s" % (board, out, board))
    with c.cd(ROOT):
        c.run("%s -m ustack.ports.micropython.build --board %s --out %s%s" % (
            PY, board, out, " --opt %d" % int(opt) if opt else ""))


@task(help={"board": "a MicroPython board in boards/ (w5500_evb_pico, pico_enc28j60, esp32_w5500)",
            "micropython": "your MicroPython checkout (with its submodules)",
            "mpy_board": "MicroPython's board name, when not the board file's MPY_BOARD"})
def freeze(c, board="", micropython="", mpy_board=""):
    """Build MicroPython firmware with the board's ustack modules frozen in (manifest + make)."""
    step("freeze", "freezing board %s's modules into %s's firmware" % (board, micropython))
    with c.cd(ROOT):
        c.run("%s -m ustack.ports.micropython.freeze --board '%s' --micropython '%s'%s" % (
            PY, board, micropython, " --mpy-board '%s'" % mpy_board if mpy_board else ""))


@task(help={"board": "board name", "port": "serial port / pty of the board"})
def deploy(c, board="unix", port=""):
    """Copy the build to a board with mpremote and start the stack."""
    with c.cd(ROOT):
        c.run("%s -m ustack.ports.micropython.deploy --board %s --port '%s'" % (PY, board, port))


@task(help={"board": "board name", "port": "serial port of the board (none: skipped)"})
def hil(c, board="", port=""):
    """Hardware in the loop: deploy to a board and run the interop suite against it."""
    if not port:
        print("hil: no board attached (pass --port); skipped")
        return
    with c.cd(ROOT):
        c.run("%s -m ustack.ports.micropython.hil --board %s --port '%s'" % (PY, board, port))


@task(help={"seconds": "fuzzing budget (default 60)", "jobs": "parallel fuzzing processes",
            "out": "working folder: corpus/ grows there, crashes/ gets any crash"})
def fuzz(c, seconds=60, jobs=1, out="build/fuzz"):
    """Coverage-guided fuzzing (atheris) of the frame input path on the pure-Python core,
    from the checked-in seed corpus; prints executions run and corpus size at the end."""
    corpus = os.path.join(out, "corpus")
    crashes = os.path.join(out, "crashes")
    with c.cd(ROOT):
        os.makedirs(os.path.join(ROOT, corpus), exist_ok=True)
        os.makedirs(os.path.join(ROOT, crashes), exist_ok=True)
        r = c.run("USTACK_PURE=1 %s tests/fuzz/fuzz_input.py %s tests/fuzz/corpus "
                  "-max_total_time=%d -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 "
                  "-artifact_prefix=%s/ %s" % (
                      PY, corpus, int(seconds), crashes,
                      ("-jobs=%d -workers=%d" % (jobs, jobs)) if int(jobs) > 1 else ""),
                  warn=True, hide="both")
        log = r.stdout + r.stderr
        execs = sum(int(line.split(":")[-1]) for line in log.splitlines()
                    if line.startswith("stat::number_of_executed_units"))
        found = sorted(os.listdir(os.path.join(ROOT, crashes)))
        print("fuzz: %d executions in %d s, corpus %d inputs (%s), %d crashes in %s" % (
            execs, int(seconds), len(os.listdir(os.path.join(ROOT, corpus))) +
            len(os.listdir(os.path.join(ROOT, "tests/fuzz/corpus"))), corpus, len(found),
            crashes))
        if found or r.exited not in (0,):
            print(log[-4000:])
            sys.exit(1)
