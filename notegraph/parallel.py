"""Forked worker processes for the two embarrassingly parallel stages: parsing files and writing pages.

Workers are forked, so they inherit the parent's data without pickling it; only their results travel
back. A worker dies with its parent (a killed build must not leave processes holding the build lock
or writing into a staging folder the next build cleans up).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4
_TASK: Callable[[Any], Any] | None = None  # what forked workers inherit (see fork_map)


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_for(items: int, min_items: int) -> int:
    """How many workers ``items`` pieces of work are worth: 1 below ``min_items``, without fork, or
    outside the main thread (``serve`` rebuilds in its watcher thread, beside its server thread: a
    forked child gets only the forking thread, and a lock another thread held at that moment would
    never be released in it; the main thread forks only while the others are waiting)."""
    if items < min_items or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if threading.current_thread() is not threading.main_thread():
        return 1
    return max(1, min(cpus(), MAX_WORKERS, items // max(1, min_items // 2)))


def fork_map(task: Callable[[T], R], shards: Sequence[T]) -> list[R]:
    """``[task(s) for s in shards]``, one forked worker per shard; results in shard order."""
    global _TASK
    if len(shards) < 2:
        return [task(s) for s in shards]
    _TASK = task
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(len(shards), initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            return pool.map(_run, shards)
    finally:
        _TASK = None


def shard(items: Sequence[T], workers: int) -> list[list[T]]:
    """Round-robin shards, so that slow items (long notes, big pages) spread evenly."""
    return [list(items[i::workers]) for i in range(workers)]


def _run(piece: Any) -> Any:
    assert _TASK is not None, "only called in a worker forked by fork_map"
    return _TASK(piece)


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)  # the parent died before the line above took effect
