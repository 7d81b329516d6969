"""Big-endian field access by index: allocation-free on MicroPython, typed under Cython."""


def get16(b, o):
    return (b[o] << 8) | b[o + 1]


def put16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


def get32(b, o):
    return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]


def put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def copy(dst, do, src, so, n):
    """dst[do:do+n] = src[so:so+n] without a temporary on MicroPython (slice stores are free,
    slice loads allocate), so copy byte by byte for short runs. Within one buffer it moves
    like memmove (as the viper copy and CPython's slices do)."""
    if dst is src and so < do < so + n:
        i = n - 1     # destination above the source: from the end down
        while i >= 0:
            dst[do + i] = src[so + i]
            i -= 1
        return
    i = 0
    while i < n:
        dst[do + i] = src[so + i]
        i += 1


def eq(b, o, a, n):
    """b[o:o+n] == a[0:n], without slicing."""
    i = 0
    while i < n:
        if b[o + i] != a[i]:
            return False
        i += 1
    return True


def _copy_slices(dst, do, src, so, n):
    dst[do:do + n] = src[so:so + n]


try:
    import micropython  # noqa: F401
    try:
        from ustack.core.checksum_viper import copy  # noqa: F811
    except (ImportError, SyntaxError):
        pass
except ImportError:
    copy = _copy_slices  # noqa: F811 - CPython (and Cython): one C-level memmove
