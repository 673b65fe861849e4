"""File-system safety: atomic writes, the build lock, and swapping a finished site into place."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from notegraph.errors import BuildError, BusyError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # say which file could not be written
        raise


def stamp(path: Path) -> list[int]:
    """A file's size and mtime (not following a symlink): what tells that it changed, without reading it."""
    st = os.lstat(path)
    return [st.st_size, st.st_mtime_ns]


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    """numpy arrays kept between builds (``np.load(..., allow_pickle=False)`` reads them back), written
    to a new file renamed over the old one. Not synced: a kept file lost in a crash, or one that cannot
    be written, only costs the next build its shortcut."""
    import numpy as np

    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def repair_state(state_dir: Path) -> list[str]:
    """Everything under ``<notes>/.notegraph/`` is notegraph's cache, made of regular files: whatever is
    there instead (a folder, a link, a pipe where a state file should be, a file it may not read or
    write, or a file in the folder's own place) is removed, with one warning each, and the build makes
    what it needs again. A link is never followed, so nothing outside the notes folder is touched."""
    from notegraph.model import printable

    repaired: list[str] = []

    def remove(path: Path) -> None:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            repaired.append(f"{printable(str(path))} was not a file notegraph writes; removed (everything under .notegraph/ is a cache)")
        except OSError as exc:
            repaired.append(f"{printable(str(path))} is not a file notegraph writes and cannot be removed: {exc.strerror or exc}")

    if state_dir.is_symlink() or (state_dir.exists() and not state_dir.is_dir()):
        remove(state_dir)
        return repaired
    try:
        entries = list(os.scandir(state_dir))
    except OSError:
        return repaired  # missing (made by the build) or unreadable (the lock says so)
    for entry in entries:
        try:
            regular = entry.is_file(follow_symlinks=False)
        except OSError:
            regular = False
        # a file the build can neither read nor rewrite (mode 000) would fail every build after
        if not regular or not os.access(entry.path, os.R_OK | os.W_OK):
            remove(Path(entry.path))
    return repaired


@contextlib.contextmanager
def build_lock(state_dir: Path, wait: bool = False) -> Iterator[None]:
    """One build per collection at a time; a second one is refused with a clear message (or waits)."""
    import fcntl

    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / "build.lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise BusyError(f"another notegraph build is running on this collection (lock: {lock_path}); try again when it ends") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_out_dir(out: Path, notes_dir: Path) -> None:
    """Refuse an output folder that is the notes folder, inside it, or one of its parents."""
    out_r = out.resolve()
    notes_r = notes_dir.resolve()
    if out_r == notes_r or out_r in notes_r.parents:
        raise BuildError(f"--out {out} would overwrite the notes folder {notes_dir}; choose another folder")
    if notes_r in out_r.parents:
        raise BuildError(f"--out {out} is inside the notes folder {notes_dir}; choose a folder outside it")
    if out_r == Path(out_r.anchor) or out_r == Path.home().resolve():
        raise BuildError(f"--out {out} is not a site folder; choose a dedicated folder")
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / ".notegraph-manifest.json").exists() and not _only_readme(out):
        raise BuildError(f"--out {out} holds files that notegraph did not write; refusing to replace them")


def _only_readme(out: Path) -> bool:
    return {p.name for p in out.iterdir()} <= {"README.md", ".gitignore"}


def staging_dir(out: Path) -> Path:
    """A fresh folder beside ``out`` (same file system, so the final swap is a rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
        staged.chmod(0o755)  # mkdtemp makes it private; a published site must be readable by a web server
        return staged
    except OSError as exc:
        raise BuildError(os_error_message(exc, out.parent)) from None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(result == 0)


def swap_in(staged: Path, out: Path) -> None:
    """Replace ``out`` by ``staged``. Where the OS can, both trade places in one atomic step; otherwise
    two renames, and a build killed between them is repaired by the next one (see clean_stale)."""
    keep = [p for p in out.iterdir() if p.name in ("README.md", ".gitignore")] if out.is_dir() else []
    for item in keep:
        shutil.copy2(item, staged / item.name)
    if out.is_dir() and _exchange(staged, out):
        remove_later(staged, out)  # staged now holds the old site
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    try:
        if out.exists():
            os.replace(out, old)
        os.replace(staged, out)
    except OSError as exc:
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise BuildError(os_error_message(exc, out)) from None
    remove_later(old, out)


def remove_later(path: Path, out: Path) -> None:
    """Delete a replaced site without making the build wait (20,000 pages take seconds to unlink):
    it is renamed to a trash name, stamped with the time, and removed by a detached process; whatever
    that process leaves, a later build's clean_stale removes."""
    trash = out.with_name(f".{out.name}.trash-{os.getpid()}-{time.time_ns()}")
    try:
        os.replace(path, trash)
        subprocess.Popen(
            [sys.executable, "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)", str(trash)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        shutil.rmtree(trash if trash.exists() else path, ignore_errors=True)


def discard(staged: Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)


TRASH_GRACE_S = 120  # how long a replaced site is left to the process removing it (see clean_stale)


def clean_stale(out: Path) -> None:
    """Tidy up after builds that were killed: bring back a site moved aside, drop half-built folders,
    and remove replaced sites whose removal did not finish. A replaced site younger than
    ``TRASH_GRACE_S`` is left to its own detached process (remove_later), which is most likely still
    at it: removing it here too made a rebuild right after another (``serve``) wait for the unlinking
    of the previous site's files, 0.03 s a rebuild at 5,000 notes. One stamped ahead of the clock (the
    clock was set back) counts as old."""
    if not out.parent.exists():
        return
    stale = sorted(out.parent.glob(f".{out.name}.old-*"))
    if stale and not out.exists():
        os.replace(stale.pop(), out)
    now = time.time_ns()
    trash = [item for item in out.parent.glob(f".{out.name}.trash-*") if not 0 <= now - _trashed_at(item) <= TRASH_GRACE_S * 10**9]
    for item in [*stale, *out.parent.glob(f".{out.name}.building-*"), *trash]:
        shutil.rmtree(item, ignore_errors=True)


def _trashed_at(trash: Path) -> int:
    """When remove_later renamed this folder (ns since the epoch); 0 for a name it did not make."""
    try:
        return int(trash.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def os_error_message(exc: OSError, where: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"disk full while writing {where}; the previous site is unchanged"
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"cannot write to {where} ({exc.strerror}); the previous site is unchanged"
    return f"cannot write {where}: {exc.strerror or exc}; the previous site is unchanged"
