"""Process-wide memory settings for the long-running hot paths (stream worker, replay workers)."""

from __future__ import annotations


def keep_freed_memory(trim_threshold: int = 256 << 20, top_pad: int = 64 << 20) -> bool:
    """glibc: keep freed heap memory in the process instead of handing it back to the OS.

    By default glibc trims the heap top as soon as 128 KiB are free, so every micro-batch (its decision
    bytes of ~1 KiB each, its parsed events) grows the heap again and page-faults the same pages in
    (replay, one process, 100k applications: 62.9 → 56.4 µs CPU per application):
    ``orjson.dumps`` of one decision measured 6.6 µs with the default and 1.7 µs with this (the whole
    batch encoder 8.7 → 4.1 µs per decision). Same effect as ``MALLOC_TRIM_THRESHOLD_`` /
    ``MALLOC_TOP_PAD_`` in the environment. No-op (False) where there is no glibc ``mallopt``."""
    import ctypes

    m_trim_threshold, m_top_pad = -1, -2  # <malloc.h>
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(m_trim_threshold, trim_threshold)) and bool(mallopt(m_top_pad, top_pad))


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc: at most ``arenas`` malloc arenas (default: 8 per core). Each thread that allocates gets an
    arena of its own, which keeps what it freed (:func:`keep_freed_memory`): the worker's model-loading
    thread, scorer thread and scorer pool each held a few MB more. Call before the threads start. Same
    as ``MALLOC_ARENA_MAX``; no-op (False) without glibc."""
    import ctypes

    m_arena_max = -8  # <malloc.h>
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(m_arena_max, arenas))


def import_lightgbm_without_pandas() -> bool:
    """Import lightgbm with pandas hidden, where pandas is not imported yet: True when it was hidden.

    lightgbm imports pandas (and, through it, pyarrow) at import time only to accept DataFrames
    (``lightgbm.compat``); the worker scores numpy rows and never hands it a DataFrame. Hidden, the worker
    process starts without them: tens of MB less resident memory and a faster start
    (``bench/results/latency_budget_*.json``: ``steady_rss_mb``, ``cold_start_s``)."""
    return import_hiding("lightgbm", "pandas")


def import_redis_without_opentelemetry() -> bool:
    """Import the redis client with opentelemetry hidden: redis 7 imports the OpenTelemetry SDK (present
    for mlflow) at import time for its optional observability hooks, which the worker does not turn
    on (~60 modules, a few MB resident)."""
    return import_hiding("redis.asyncio", "opentelemetry")


def import_numba_without_coverage() -> bool:
    """Import numba with coverage.py hidden, where neither is imported yet: numba imports coverage (a
    development dependency, absent from the image) at import time to report the lines of compiled code
    to a coverage run; a worker not measured by coverage has no use for it (~60 modules, a few MB
    resident, tens of ms of start-up). Under a coverage run coverage is imported first: nothing hidden."""
    return import_hiding("numba", "coverage")


def import_hiding(module: str, hidden: str) -> bool:
    """Import ``module`` while ``import hidden`` raises ImportError (the optional-dependency probe of most
    libraries), where neither is imported yet; True when ``hidden`` was hidden. ``hidden`` stays
    importable afterwards (``sys.modules`` is restored): a later ``import pandas`` (mlflow, when the model
    comes from the registry) still works; ``module`` alone keeps its without-``hidden`` code paths."""
    import importlib
    import sys

    if module in sys.modules or hidden in sys.modules:
        return False
    sys.modules[hidden] = None  # type: ignore[assignment]  # makes `import <hidden>` raise ImportError
    try:
        importlib.import_module(module)
    finally:
        del sys.modules[hidden]
    return True


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, the model's plan, settings) out of the collector's reach.

    After start-up the worker holds a few hundred thousand tracked objects (modules, numba's typing
    registries, the model) that live as long as the process; every full collection walks all of them
    with the GIL held: a pause of the event loop and the scorer thread, a p99 spike for every batch in
    flight (``python_gc_collections_total{generation="2"}`` counts them).
    ``gc.freeze()`` puts them in the permanent generation, so collections only walk what batches
    allocate. Returns the number of objects frozen."""
    import gc

    gc.collect()
    gc.freeze()
    release_free_heap()
    return gc.get_freeze_count()


def release_free_heap() -> bool:
    """glibc ``malloc_trim(0)``: hand the heap's free pages back to the OS, in every arena (start-up's
    garbage: the model dumped to JSON to compile it, probe rows, the loading thread's arena). Done once,
    before :func:`keep_freed_memory`'s thresholds keep what batches free. False where there is none."""
    import ctypes

    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(malloc_trim(0))


def settle_heap(young_threshold: int = 20_000) -> tuple[int, int, int]:
    """Once a long-running process has loaded its model and built its clients: freeze what is alive
    (:func:`freeze_startup_objects`) and collect the young generation less often.

    A micro-batch of whole forms allocates enough (parsed events, reason codes, decision documents) to
    start a young collection every few hundred decisions (``bench/results/batch_path.json``); a larger
    first threshold makes fewer, larger young collections of objects that mostly die together with
    their batch. Nothing is leaked: objects created later are collected as before. Returns the
    thresholds set."""
    import gc

    freeze_startup_objects()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    return gc.get_threshold()
