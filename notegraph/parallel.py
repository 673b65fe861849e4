"""Forked worker processes for the embarrassingly parallel stages (parsing files, ranking, writing pages),
and one forked task beside the main process (``fork_call``).

Workers are forked, so they inherit the parent's data without pickling it; only their results travel
back. A worker dies with its parent (a killed build must not leave processes holding the build lock
or writing into a staging folder the next build cleans up).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def may_fork() -> bool:
    """Whether forking is possible and safe here: the platform has fork and this is the main thread
    (``serve`` rebuilds in its watcher thread, beside its server thread: a forked child gets only the
    forking thread, and a lock another thread held at that moment would never be released in it; the
    main thread forks only while the others are waiting)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.current_thread() is threading.main_thread()


def forks_here() -> bool:
    """Whether work forked from here runs beside this process: on several cores, where forking is
    possible and safe (see may_fork)."""
    return cpus() > 1 and may_fork()


def workers_for(items: int, min_items: int) -> int:
    """How many workers ``items`` pieces of work are worth: 1 below ``min_items`` or where forking is
    not possible or safe (see may_fork)."""
    if items < min_items or not may_fork():
        return 1
    return max(1, min(cpus(), MAX_WORKERS, items // max(1, min_items // 2)))


def fork_map(task: Callable[[T], R], shards: Sequence[T]) -> list[R]:
    """``[task(s) for s in shards]``, one forked worker per shard; results in shard order."""
    with fork_map_meanwhile(task, shards) as results:
        return results()


@contextlib.contextmanager
def fork_map_meanwhile(task: Callable[[T], R], shards: Sequence[T]) -> Iterator[Callable[[], list[R]]]:
    """fork_map whose workers run while the caller goes on inside the context; the context gives the
    function that waits for their results (an exception in a worker is raised there). With fewer than
    two shards the work is done when asked for. Each worker is a ``fork_call``: a multiprocessing pool
    cost 0.03 s more to start, twice in a build."""
    if len(shards) < 2:
        yield lambda: [task(s) for s in shards]
        return
    with contextlib.ExitStack() as stack:
        waits = [stack.enter_context(fork_call(functools.partial(task, piece))) for piece in shards]
        yield lambda: [wait() for wait in waits]


@contextlib.contextmanager
def one_blas_thread(when: bool | None = None) -> Iterator[None]:
    """BLAS (numpy's matrix products) on one thread inside the context, when ``when`` (by default: when
    work forked from here runs beside this process, see forks_here): for code that runs beside forked
    workers, which already take every core. There BLAS's own threads cost more than they give: a
    product on two threads waits for a thread that a worker has taken the core of, and an idle
    OpenBLAS thread spins for ~0.1 s before it sleeps, also when it is started again after a fork
    (~0.3 s of CPU in one edit build at 5,000 notes on 2 cores). Forked workers inherit the setting."""
    if not (forks_here() if when is None else when):
        yield
        return
    from threadpoolctl import threadpool_limits  # lazy: a build that forks nothing never needs it

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def shard(items: Sequence[T], workers: int) -> list[list[T]]:
    """Round-robin shards, so that slow items (long notes, big pages) spread evenly."""
    return [list(items[i::workers]) for i in range(workers)]


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)  # the parent died before the line above took effect


@contextlib.contextmanager
def fork_call(task: Callable[[], R], fork: bool = True) -> Iterator[Callable[[], R]]:
    """Run ``task()`` in one forked process while the caller goes on; the context gives a function that
    waits for its result (an exception in the task is raised there). Leaving the context without asking
    ends the process. With ``fork`` false, on one core, or where forking is not possible or safe (see
    may_fork), the task runs when its result is asked for."""
    if not fork or not forks_here():
        done: list[R] = []

        def run_here() -> R:
            if not done:
                done.append(task())
            return done[0]

        yield run_here
        return
    parent = os.getpid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the pickled outcome, and leave without the parent's exit handlers
        status = 1
        try:
            os.close(read_end)
            _die_with_parent(parent)
            try:
                outcome: tuple[bool, Any] = (True, task())
            except BaseException as exc:  # noqa: BLE001 - handed to the parent
                outcome = (False, exc)
            try:
                data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - an unpicklable exception
                data = pickle.dumps((False, RuntimeError(f"forked task failed: {outcome[1]!r} ({exc})")))
            with os.fdopen(write_end, "wb") as handle:
                handle.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    state: dict[str, Any] = {}

    def result() -> R:
        if "outcome" not in state:
            with os.fdopen(read_end, "rb") as handle:
                data = handle.read()
            state["outcome"] = pickle.loads(data) if data else (False, RuntimeError("forked task ended without a result"))
            os.waitpid(pid, 0)
        ok, value = state["outcome"]
        if not ok:
            raise value
        return value

    try:
        yield result
    finally:
        if "outcome" not in state:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(read_end)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
