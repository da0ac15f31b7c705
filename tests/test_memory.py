"""gradcheck.catalogue.memory: `gradcheck run` keeps freed memory for the next case (glibc's malloc), so a
case's 0.8 GB arrays reuse pages the case before it touched instead of being faulted in afresh."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradcheck import cli

CHILD = """
import sys
import numpy as np
from gradcheck.catalogue import memory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

kept = memory.keep_freed_memory() if sys.argv[1] == "keep" else False
a = np.ones(64 << 20 >> 3)  # 64 MB, over glibc's largest mmap threshold (32 MB)
at, before = a.ctypes.data, rss()
del a
after = rss()
b = np.ones(64 << 20 >> 3)
print(kept, before - after, b.ctypes.data == at)
"""


def child(mode):
    run = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    kept, released, same = run.stdout.split()
    return kept == "True", int(released), same == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_memory_stays_in_the_process_and_is_reused():
    kept, released, same = child("keep")
    assert kept and released < 8 << 20 and same  # the 64 MB stay resident; the next array takes them
    kept, released, _ = child("plain")
    assert not kept and released > 56 << 20  # glibc's default: the block is unmapped when freed


def test_gradcheck_run_asks_for_it(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    (tmp_path / "none").mkdir()
    CliRunner().invoke(cli.main, ["run", str(tmp_path / "none")])
    assert calls == [1]
