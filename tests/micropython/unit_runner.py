"""Run pytest-style test files without pytest, on MicroPython or CPython (same code both ways).

    micropython unit_runner.py --lib STAGED_LIB --root REPO tests/unit/test_wire.py ...
    python      unit_runner.py --lib STAGED_LIB --root REPO tests/unit/test_wire.py ...

One JSON line per test: {"id": "test_wire.py::test_x[a-1]", "outcome": "pass" | "fail" |
"skip" | "error", "msg": "..."}; a module that cannot be imported gives one line with id
"<file>::<import>". tests/micropython/test_core_units.py runs both and uses CPython's
outcomes as the oracle for MicroPython's.

Supported: plain test functions, @pytest.fixture (plain and yield, fixtures using fixtures,
from the same module), @pytest.mark.parametrize (stacked: cartesian product),
pytest.mark.skipif/skip, pytest.raises, pytest.skip, pytest.approx (mpy_shims/pytest.py).
Argument names come from the source text: MicroPython has no inspect.
"""
import sys

MPY = sys.implementation.name == "micropython"


def _dirname(p):
    i = p.rfind("/")
    return p[:i] if i > 0 else ("/" if i == 0 else ".")


def _basename(p):
    return p[p.rfind("/") + 1:]


def parse_defs(src):
    """{function name: [argument names]} for every top-level def in the source text."""
    out = {}
    i = 0
    n = len(src)
    while True:
        j = src.find("def ", i)
        if j < 0:
            break
        i = j + 4
        if j > 0 and src[j - 1] != "\n":
            continue
        k = src.find("(", i)
        if k < 0:
            break
        name = src[i:k].strip()
        depth = 1
        m = k + 1
        while m < n and depth:
            c = src[m]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            m += 1
        args = []
        depth = 0
        cur = ""
        for c in src[k + 1:m - 1] + ",":
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            if c == "," and depth == 0:
                a = cur.strip()
                cur = ""
                if not a or a.startswith("*"):
                    continue
                a = a.split("=")[0].split(":")[0].strip()
                args.append(a)
            else:
                cur += c
        out[name] = args
        i = m
    return out


def _idpart(name, v, idx):
    if v is None or isinstance(v, (str, int, float, bool)):
        s = str(v)
        return s if len(s) <= 40 else name + str(idx)
    return name + str(idx)


def expand(fn, params):
    """[(id suffix, {argname: value})] for a test function's parametrize marks."""
    cases = [("", {})]
    for names, values, ids in params.get(fn, []):
        new = []
        for vi in range(len(values)):
            v = values[vi]
            vals = [v] if len(names) == 1 else list(v)
            if ids is not None and not callable(ids):
                part = str(ids[vi])
            else:
                part = "-".join(_idpart(names[k], vals[k], vi) for k in range(len(names)))
            for sid, kw in cases:
                d = dict(kw)
                for k in range(len(names)):
                    d[names[k]] = vals[k]
                new.append((part + ("-" + sid if sid else ""), d))
        cases = new
    return cases


def _emit(tid, outcome, msg=""):
    import json
    sys.stdout.write(json.dumps({"id": tid, "outcome": outcome, "msg": msg}) + "\n")


def _exc_msg(e):
    name = type(e).__name__
    s = str(e)
    return (name + ": " + s) if s else name


def run_file(path):
    import pytest
    base = _basename(path)
    modname = base[:-3]
    d = _dirname(path)
    if d not in sys.path:
        sys.path.insert(0, d)
    with open(path) as f:
        src = f.read()
    defs = parse_defs(src)
    pytest.FIXTURES.clear()
    try:
        mod = __import__(modname)
    except Exception as e:
        _emit(base + "::<import>", "error", _exc_msg(e))
        return
    fixtures = dict(pytest.FIXTURES)
    g = mod.__dict__
    # a fixture imported from a module an earlier file imported first: its decorator ran
    # then, so it is not in this file's FIXTURES; its name in this module finds it
    for n in g:
        v = g[n]
        if n not in fixtures and callable(v) and v in pytest.ALL_FIXTURES:
            fixtures[n] = v
    names = [n for n in defs if n.startswith("test") and n in g and callable(g[n])]
    for name in names:
        fn = g[name]
        if fn in pytest.SKIPS:
            _emit(base + "::" + name, "skip", pytest.SKIPS[fn])
            continue
        for sid, kw in expand(fn, pytest.PARAMS):
            tid = base + "::" + name + ("[" + sid + "]" if sid else "")
            run_case(tid, fn, defs.get(name, []), kw, fixtures, defs)


def run_case(tid, fn, argnames, given, fixtures, defs):
    import pytest
    values = {}
    teardowns = []

    def get(fx):
        if fx in values:
            return values[fx]
        if fx not in fixtures:
            raise LookupError("fixture %r not available here" % (fx,))
        f = fixtures[fx]
        kw = {}
        for a in defs.get(fx, []):
            kw[a] = given[a] if a in given else get(a)
        r = f(**kw)
        if type(r).__name__ == "generator":
            v = next(r)
            teardowns.append(r)
        else:
            v = r
        values[fx] = v
        return v

    outcome = "pass"
    msg = ""
    try:
        kw = {}
        for a in argnames:
            kw[a] = given[a] if a in given else get(a)
    except pytest.Skipped as e:
        _emit(tid, "skip", str(e))
        return
    except Exception as e:
        _emit(tid, "error", "setup: " + _exc_msg(e))
        return
    try:
        fn(**kw)
    except pytest.Skipped as e:
        outcome, msg = "skip", str(e)
    except pytest.XFailed as e:
        outcome, msg = "skip", "xfail: " + str(e)
    except Exception as e:
        outcome, msg = "fail", _exc_msg(e)
    while teardowns:
        t = teardowns.pop()
        try:
            next(t)
        except StopIteration:
            pass
        except Exception as e:
            if outcome == "pass":
                outcome, msg = "error", "teardown: " + _exc_msg(e)
    _emit(tid, outcome, msg)


def main(argv):
    lib = None
    root = None
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--lib":
            lib = argv[i + 1]
            i += 2
            continue
        if a == "--root":
            root = argv[i + 1]
            i += 2
            continue
        files.append(a)
        i += 1
    shims = _dirname(__file__) + "/mpy_shims" if "/" in __file__ else "mpy_shims"
    front = [shims]
    if MPY:
        front.insert(0, shims + "/mponly")
    if lib:
        front.append(lib)
    if root:
        front.append(root)
    sys.path[:0] = front
    for f in files:
        run_file(f)


if __name__ == "__main__":
    main(sys.argv[1:])
