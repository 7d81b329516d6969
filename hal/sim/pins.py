"""The INT and RESET pins every virtual chip has (both active low). A chip provides
`_int_asserted()`, `reset()` and a `_held` flag."""


class IntPin:
    """INT output: low while the chip asserts an enabled interrupt."""

    def __init__(self, chip):
        self._chip = chip

    def value(self, v=None):
        return 0 if self._chip._int_asserted() else 1

    def pending(self):
        return self._chip._int_asserted()


class ResetPin:
    """RESET input: held low -> chip in reset; rising edge -> power-on state."""

    def __init__(self, chip):
        self._chip = chip
        self._v = 1

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v and not self._v:
            self._chip._held = False
            self._chip.reset()
        elif not v:
            self._chip._held = True
        self._v = v
        return None
