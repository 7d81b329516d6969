"""Protocol engine: the pure-Python subset that runs on MicroPython and compiles with Cython."""
