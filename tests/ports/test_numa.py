"""NUMA placement (ports/cpython/numa.py) on a fake sysfs tree: this machine has one node, so
the trees below describe machines it is not."""
import os
import subprocess
import sys

import pytest

from ustack.ports.cpython import numa

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(root, path, text):
    p = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text + "\n")


def two_nodes(root, nic_node="1"):
    """Node 0 has CPUs 0-3, node 1 CPUs 4-7; eth0's device sits on `nic_node`."""
    write(root, "sys/devices/system/node/node0/cpulist", "0-3")
    write(root, "sys/devices/system/node/node1/cpulist", "4-7")
    write(root, "sys/class/net/eth0/device/numa_node", nic_node)
    write(root, "sys/bus/pci/devices/0000:81:00.0/numa_node", nic_node)


class Affinity:
    """Stands in for os.sched_{get,set}affinity: records what was set, on which thread."""

    def __init__(self, allowed):
        self.allowed = set(allowed)
        self.calls = []

    def get(self, tid):
        return set(self.allowed)

    def set(self, tid, cpus):
        self.calls.append((tid, set(cpus)))


def test_nic_on_node_1_pins_the_io_thread_to_node_1s_cpus(tmp_path):
    two_nodes(tmp_path)
    a = Affinity(range(8))
    p = numa.place(nic="eth0", root=str(tmp_path), tid=4242, setaffinity=a.set,
                   getaffinity=a.get)
    assert a.calls == [(4242, {4, 5, 6, 7})]
    assert (p.node, p.cpus) == (1, {4, 5, 6, 7})
    assert p.field() == "numa=node1 cpus=4-7"


def test_a_pci_device_is_placed_by_its_own_numa_node(tmp_path):
    two_nodes(tmp_path)
    a = Affinity(range(8))
    p = numa.place(pci="0000:81:00.0", root=str(tmp_path), tid=7, setaffinity=a.set,
                   getaffinity=a.get)
    assert a.calls == [(7, {4, 5, 6, 7})]
    assert p.field() == "numa=node1 cpus=4-7"


def test_only_the_cpus_the_process_may_use_are_chosen(tmp_path):
    two_nodes(tmp_path)
    a = Affinity({0, 1, 5, 7})  # a cgroup or taskset left us these
    p = numa.place(nic="eth0", root=str(tmp_path), tid=1, setaffinity=a.set, getaffinity=a.get)
    assert a.calls == [(1, {5, 7})]
    assert p.field() == "numa=node1 cpus=5,7"


def test_no_usable_cpu_on_the_nics_node_changes_nothing(tmp_path):
    two_nodes(tmp_path)
    a = Affinity({0, 1})
    p = numa.place(nic="eth0", root=str(tmp_path), tid=1, setaffinity=a.set, getaffinity=a.get)
    assert a.calls == []
    assert p.field() == "numa=none"


def test_node_minus_one_means_no_preference(tmp_path):
    two_nodes(tmp_path, nic_node="-1")
    a = Affinity(range(8))
    p = numa.place(nic="eth0", root=str(tmp_path), tid=1, setaffinity=a.set, getaffinity=a.get)
    assert a.calls == []
    assert p.field() == "numa=none"


@pytest.mark.parametrize("missing", ["sys/class/net/eth0/device/numa_node",
                                     "sys/devices/system/node/node1/cpulist"])
def test_missing_sysfs_files_change_nothing_and_raise_nothing(tmp_path, missing):
    two_nodes(tmp_path)
    os.remove(os.path.join(str(tmp_path), missing))
    a = Affinity(range(8))
    p = numa.place(nic="eth0", root=str(tmp_path), tid=1, setaffinity=a.set, getaffinity=a.get)
    assert a.calls == []
    assert p.field() == "numa=none"


def test_a_tap_has_no_device_and_an_empty_tree_no_nodes(tmp_path):
    a = Affinity(range(8))
    for nic in ("ustack0", None):
        p = numa.place(nic=nic, root=str(tmp_path), tid=1, setaffinity=a.set,
                       getaffinity=a.get)
        assert p.field() == "numa=none"
    assert a.calls == []


def test_malformed_sysfs_values_count_as_missing(tmp_path):
    two_nodes(tmp_path)
    write(tmp_path, "sys/devices/system/node/node1/cpulist", "4-x")
    a = Affinity(range(8))
    assert numa.place(nic="eth0", root=str(tmp_path), tid=1, setaffinity=a.set,
                      getaffinity=a.get).field() == "numa=none"
    write(tmp_path, "sys/class/net/eth0/device/numa_node", "one")
    assert numa.nic_node("eth0", root=str(tmp_path)) == -1
    assert a.calls == []


def test_cpus_given_by_hand_win_over_the_nics_node(tmp_path):
    two_nodes(tmp_path)
    a = Affinity(range(8))
    p = numa.place(nic="eth0", cpus={0, 2}, root=str(tmp_path), tid=9, setaffinity=a.set,
                   getaffinity=a.get)
    assert a.calls == [(9, {0, 2})]
    assert p.field() == "numa=manual cpus=0,2"


@pytest.mark.parametrize("text,cpus", [("0", {0}), ("0-3", {0, 1, 2, 3}),
                                       ("0-1,4,6-7", {0, 1, 4, 6, 7}), ("", set())])
def test_cpu_lists_read_and_write_in_sysfs_syntax(text, cpus):
    assert numa.parse_cpulist(text) == cpus
    assert numa.format_cpulist(cpus) == text


@pytest.mark.parametrize("text", ["a", "1-", "3-1", "1,,2", "-1"])
def test_a_malformed_cpu_list_is_refused(text):
    with pytest.raises(ValueError):
        numa.parse_cpulist(text)


def test_cpus_flag_accepts_only_cpus_this_process_may_use():
    assert numa.check_cpus("--cpus", "0-1", allowed={0, 1, 2}) == {0, 1}
    with pytest.raises(ValueError, match="--cpus 5: CPU 5 not available"):
        numa.check_cpus("--cpus", "5", allowed={0, 1})


def test_place_really_sets_this_threads_affinity_and_keeps_it_to_the_allowed_cpus():
    """The real call, on this machine: pin to one allowed CPU, then put the mask back."""
    before = os.sched_getaffinity(0)
    one = min(before)
    try:
        p = numa.place(cpus={one})
        assert os.sched_getaffinity(0) == {one}
        assert p.field() == "numa=manual cpus=%d" % one
    finally:
        os.sched_setaffinity(0, before)


def up(*flags):
    return subprocess.run([sys.executable, "-m", "ustack.ports.cpython.cli", "up"] + list(flags),
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("value,words", [("x", "--cpus x: not a CPU list"),
                                         ("4096", "--cpus 4096: CPU 4096 not available")])
def test_up_refuses_a_bad_cpus_value_in_one_line(value, words):
    r = up("--cpus", value, "--tap", "ustkbad0", "--duration", "0.1")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr


def test_micropython_runtime_refuses_cpus_naming_the_flag():
    r = up("--runtime", "micropython", "--cpus", "0", "--tap", "ustkbad0")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cpus 0" in lines[0] and "cpython" in lines[0], r.stderr
