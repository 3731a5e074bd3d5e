"""credit_scorer.memory: after keep_freed_memory(), glibc keeps a freed heap top in the process
instead of returning it to the OS at once (what made every micro-batch page-fault its memory back in).

Measured in fresh interpreters (glibc adapts its thresholds to a process's history), side by side with
the default, so the test fails if the setting has no effect."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
if sys.argv[1] == "keep":
    from credit_scorer.memory import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
blocks = [libc.malloc(64 << 10) for _ in range(640)]  # 40 MiB of heap (below the mmap threshold)
for b in blocks:
    libc.memset(b, 1, 64 << 10)
before = rss()
for b in reversed(blocks):
    libc.free(b)
print(before - rss())
"""


def _released_kib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux", reason="glibc mallopt and /proc are Linux-only")
def test_freed_heap_stays_in_the_process() -> None:
    assert _released_kib("default") > 30 << 10  # glibc's default: the heap top goes back at once
    assert _released_kib("keep") < 4 << 10
