import os

import pytest

from tests.micropython.mpyhelp import stage_lib


@pytest.fixture(scope="session")
def mpy_lib(tmp_path_factory):
    """A staged ustack tree for MicroPython (core/hal/ports linked from the checkout)."""
    return stage_lib(str(tmp_path_factory.mktemp("mpylib")))


@pytest.fixture(scope="session")
def mpy_lib_pure(tmp_path_factory):
    """The same without core/checksum_viper.py: the pure-Python hot paths MicroPython ports
    without the native emitter run."""
    return stage_lib(str(tmp_path_factory.mktemp("mpylib_pure")), exclude=("checksum_viper.py",))


@pytest.fixture
def workdir(tmp_path):
    d = str(tmp_path / "run")
    os.makedirs(d)
    return d
