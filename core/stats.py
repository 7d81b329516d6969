"""Counters: plain int attributes, one per event or drop reason, so a test can assert exactly
which path a frame took (PyTCP's "counters as oracle").

Compiled, the counters every frame or segment moves are C fields of the class (stats.pxd),
the rest instance attributes; a group's own names (`names`) are all it shows."""


class Counters:
    def __init__(self, names):
        for n in names:
            setattr(self, n, 0)
        self._names = names

    def items(self):
        return [(n, getattr(self, n)) for n in self._names]

    def nonzero(self):
        return [(n, v) for n, v in self.items() if v]

    def reset(self):
        for n in self._names:
            setattr(self, n, 0)
