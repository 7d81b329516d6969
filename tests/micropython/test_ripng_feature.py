"""The optional routing speakers in a board's module set (ports/micropython/build.py): "rip"
ships core/rip.py, "ripng" core/ripng.py, either one core/distvec.py (their shared route
table), neither none of them; no note of a module shipping against its feature."""
import types

import pytest

from ustack.ports.micropython.build import select_modules

SPEAKERS = ("core/rip.py", "core/ripng.py", "core/distvec.py")


@pytest.mark.parametrize("feats,want", [
    (("tcp", "sack", "dhcp", "dns", "socket"), ()),
    (("tcp", "ipv6", "ripng"), ("core/distvec.py", "core/ripng.py")),
    (("tcp", "rip"), ("core/distvec.py", "core/rip.py")),
    (("tcp", "ipv6", "rip", "ripng"), ("core/distvec.py", "core/rip.py", "core/ripng.py")),
])
def test_a_board_ships_the_speakers_it_names_and_their_shared_table(feats, want):
    board = types.SimpleNamespace(FEATURES=feats, DRIVER="w5500", __name__="boards.x")
    mods, notes, missing = select_modules(board)
    got = tuple(sorted(rel for rel, why in mods if rel in SPEAKERS))
    assert got == want, mods
    assert not [n for n in notes if any(s in n for s in SPEAKERS)], notes
    # the folder rule still holds: a board without "sack" leaves core/tcp/scoreboard.py out
    rels = [rel for rel, why in mods]
    assert ("core/tcp/scoreboard.py" in rels) == ("sack" in feats)
