"""The slice of pytest the unit tests use, for running them where pytest is not: the
MicroPython unix port (and CPython, for the same runner's oracle run). Used by
tests/micropython/unit_runner.py only; real pytest never sees this file.

MicroPython functions take no attributes, so marks and fixtures live in registries keyed by
the function object."""

FIXTURES = {}      # name -> function
ALL_FIXTURES = {}  # function -> name, every fixture ever defined (FIXTURES is per file)
PARAMS = {}        # test function -> [(argnames, values, ids)], outermost decorator last
SKIPS = {}         # test function -> reason


class Skipped(Exception):
    pass


class XFailed(Exception):
    pass


def skip(reason=""):
    raise Skipped(reason)


def xfail(reason=""):
    raise XFailed(reason)


def fail(msg=""):
    raise AssertionError(msg)


def importorskip(name, *a, **k):
    try:
        return __import__(name)
    except ImportError:
        raise Skipped("no module " + name)


def fixture(fn=None, scope="function", autouse=False, params=None, name=None):
    def deco(f):
        FIXTURES[name or f.__name__] = f
        ALL_FIXTURES[f] = name or f.__name__
        return f
    if fn is not None and callable(fn):
        return deco(fn)
    return deco


class _Raises:
    def __init__(self, exc, match=None):
        self.expected = exc
        self.match = match
        self.value = None
        self.type = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            raise AssertionError("DID NOT RAISE %r" % (self.expected,))
        if not issubclass(et, self.expected):
            return False
        self.value = ev if ev is not None else et()
        self.type = et
        if self.match is not None:
            import re
            if not re.search(self.match, str(self.value)):
                raise AssertionError("%r does not match %r" % (str(self.value), self.match))
        return True


def raises(exc, *args, match=None, **kw):
    if args:
        fn = args[0]
        with _Raises(exc, match) as r:
            fn(*args[1:], **kw)
        return r
    return _Raises(exc, match)


class approx:
    def __init__(self, expected, rel=1e-6, abs=1e-12):
        self.expected = expected
        self.rel = rel
        self.abs = abs

    def __eq__(self, other):
        tol = max(self.rel * abs(self.expected), self.abs)
        return abs(other - self.expected) <= tol


class _Mark:
    def parametrize(self, argnames, values, ids=None, **kw):
        if isinstance(argnames, str):
            names = [a.strip() for a in argnames.split(",") if a.strip()]
        else:
            names = list(argnames)

        def deco(f):
            PARAMS.setdefault(f, []).append((names, list(values), ids))
            return f
        return deco

    def skipif(self, cond, reason=""):
        def deco(f):
            if cond:
                SKIPS[f] = reason or "skipif"
            return f
        return deco

    def skip(self, reason=""):
        def deco(f):
            SKIPS[f] = reason or "skip"
            return f
        return deco

    def __getattr__(self, name):  # slow, root, xfail, ...: no-ops here
        def mark(*a, **k):
            if len(a) == 1 and callable(a[0]) and not k:
                return a[0]
            return lambda f: f
        return mark


mark = _Mark()


def param(*values, id=None, marks=()):
    return values if len(values) != 1 else values[0]
