"""Milliseconds and idle waits on every runtime (MicroPython time.ticks_*, CPython monotonic)."""
import time

try:
    _ticks = time.ticks_ms
    _diff = time.ticks_diff
    _base = _ticks()

    def now_ms():
        # ticks_ms wraps; the stack wants a growing count (small int for ~12 days on MCUs)
        global _base, _acc
        t = _ticks()
        _acc += _diff(t, _base)
        _base = t
        return _acc

    _acc = 0

    def sleep_ms(ms):
        time.sleep_ms(ms)
except AttributeError:
    def now_ms():
        return int(time.monotonic() * 1000)

    def sleep_ms(ms):
        time.sleep(ms / 1000.0)
