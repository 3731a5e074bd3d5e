"""credit_scorer.memory: after keep_freed_memory(), glibc keeps a freed heap top in the process
instead of returning it to the OS at once (what made every micro-batch page-fault its memory back in).

Measured in fresh interpreters, side by side with glibc's default trim policy, so the test fails if the
setting has no effect. The baseline pins that default (``M_TRIM_THRESHOLD`` = 128 KiB) with ``mallopt``
instead of trusting the process's own: glibc raises its trim threshold each time a large mmapped block
is freed, so a child with such a history (coverage's start-up in a measured child, say) would keep its
heap by itself and the comparison would say nothing (the baseline is also checked after such a
history). Nothing may stay allocated above the blocks (it would pin the heap top, and where it lands
depends on the interpreter's start-up): the pointer array comes before them, /proc is read once
before them, and Python's tracer is off (coverage's tracer allocates as lines run).

Also the worker's start-up helpers, each in a fresh interpreter: lightgbm without pandas, the start-up
objects frozen out of full collections, the kept heap handed back once."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys
mode, history = sys.argv[1], sys.argv[2] == "history"
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
if history:  # a freed 30 MiB mmapped block: glibc's dynamic trim threshold rises to 60 MiB
    libc.free(libc.malloc(30 << 20))
if mode == "keep":
    from credit_scorer.memory import keep_freed_memory
    assert keep_freed_memory()
else:
    assert libc.mallopt(-1, 128 << 10)  # M_TRIM_THRESHOLD: glibc's documented default, pinned
sys.settrace(None)
rss()  # whatever reading /proc creates for good, before the blocks
blocks = (ctypes.c_void_p * 640)()  # allocated before the blocks: a growing list would land above them
for i in range(640):  # 40 MiB of heap (blocks below the mmap threshold)
    blocks[i] = libc.malloc(64 << 10)
    libc.memset(blocks[i], 1, 64 << 10)
before = rss()
for i in reversed(range(640)):
    libc.free(blocks[i])
print(before - rss())
"""


def _released_kib(mode: str, history: bool = False) -> int:
    args = [sys.executable, "-c", SCRIPT, mode, "history" if history else "fresh"]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux", reason="glibc mallopt and /proc are Linux-only")
def test_freed_heap_stays_in_the_process() -> None:
    assert _released_kib("default") > 30 << 10  # default policy: the heap top goes back at once
    assert _released_kib("default", history=True) > 30 << 10  # whatever the child did before
    assert _released_kib("keep") < 4 << 10


SETTLE = """
import gc, weakref
from credit_scorer.memory import settle_heap
class Node:
    pass
kept = [Node() for _ in range(1000)]
thresholds = settle_heap(12_345)
frozen = gc.get_freeze_count()
tracked = {id(o) for o in gc.get_objects()}  # what a collection still walks
cycle = Node(); cycle.me = cycle  # garbage made after start-up is still collected
ref = weakref.ref(cycle)
del cycle
gc.collect()
print(thresholds[0], frozen >= 1000, any(id(k) in tracked for k in kept), ref() is None)
"""


def test_settled_heap_is_out_of_the_collector_and_later_garbage_is_still_collected() -> None:
    # in a fresh interpreter: freezing the test process's heap would outlive this test
    out = subprocess.run([sys.executable, "-c", SETTLE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["12345", "True", "False", "True"]


HIDING = """
import sys
from credit_scorer.memory import import_lightgbm_without_pandas
assert "pandas" not in sys.modules
assert import_lightgbm_without_pandas()
import lightgbm.compat
assert not lightgbm.compat.PANDAS_INSTALLED, "lightgbm saw pandas"
assert "pandas" not in sys.modules and "pyarrow" not in sys.modules
assert not import_lightgbm_without_pandas()  # already imported: nothing to hide
import pandas  # still importable afterwards (mlflow needs it)
print(pandas.__name__)
"""


def test_lightgbm_is_imported_without_pandas_which_stays_importable() -> None:
    out = subprocess.run([sys.executable, "-c", HIDING], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pandas"


NUMBA_HIDING = """
import sys
from credit_scorer.memory import import_numba_without_coverage
assert "coverage" not in sys.modules
assert import_numba_without_coverage()
import numba.misc.coverage_support
assert not numba.misc.coverage_support.coverage_available, "numba saw coverage"
assert "coverage" not in sys.modules
assert not import_numba_without_coverage()  # already imported: nothing to hide
import coverage  # still importable afterwards
print(coverage.__name__)
"""


def test_numba_is_imported_without_coverage_which_stays_importable() -> None:
    # a child outside the suite's own coverage run (which starts coverage in every child Python)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", NUMBA_HIDING], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "coverage"


FREEZE = """
import gc, time
from credit_scorer.memory import freeze_startup_objects
keep = [[i] for i in range(300_000)]  # long-lived (GC-tracked) objects, like a worker's modules and model
t0 = time.perf_counter(); gc.collect(); walked = time.perf_counter() - t0
frozen = freeze_startup_objects()
t0 = time.perf_counter(); gc.collect(); after = time.perf_counter() - t0
print(frozen, walked, after)
"""


def test_frozen_start_up_objects_are_no_longer_walked_by_full_collections() -> None:
    out = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True)
    frozen, walked, after = out.stdout.split()
    assert int(frozen) >= 300_000
    assert float(after) < float(walked) / 10  # a full collection no longer walks them


RELEASE = """
import ctypes
from credit_scorer.memory import keep_freed_memory, release_free_heap
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
assert keep_freed_memory()
blocks = (ctypes.c_void_p * 640)()
for i in range(640):  # 40 MiB of heap, kept when freed (keep_freed_memory)
    blocks[i] = libc.malloc(64 << 10)
    libc.memset(blocks[i], 1, 64 << 10)
for i in reversed(range(640)):
    libc.free(blocks[i])
kept = rss()
assert release_free_heap()
print(kept - rss())
"""


@pytest.mark.skipif(platform.system() != "Linux", reason="glibc malloc_trim and /proc are Linux-only")
def test_release_free_heap_hands_kept_memory_back() -> None:
    out = subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) > 30 << 10  # KiB: most of the 40 MiB went back
