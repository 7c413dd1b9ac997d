"""One training run per model directory.

A run holds an exclusive ``flock`` on ``DIR/.lock`` and writes its process id in it.
The kernel drops the lock when the process ends, however it ends, so a lock left by a
killed run is never in force: the next run takes the file over (with a warning that
names the gone process). A second run while the first lives is refused at once with a
message naming the holder. Taking the lock also clears temporary files that a killed
save left behind. Readers (``generate``, ``blend``, ...) take no lock: every file is
renamed into place whole, so they always see the last complete checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from charlstm.checkpoint import remove_temp_files
from charlstm.errors import CharlstmError
from charlstm.log import Log, log_to_stderr

LOCK_FILE = ".lock"

_held: set[Path] = set()  # directories this process holds


@contextlib.contextmanager
def lock_model_dir(model_dir: str | Path, warn: Log = log_to_stderr) -> Iterator[Path]:
    """Hold the training lock of ``model_dir`` (created if missing) for the ``with`` block.

    Re-entrant within a process. Raises :class:`CharlstmError` naming the holder's pid
    if another process holds it. A directory this call created is removed again on
    exit if nothing else was written into it.
    """
    path = Path(model_dir)
    key = path.resolve()
    if key in _held:
        yield path
        return
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CharlstmError(f"{path}: is a file, expected a model directory") from None
    except OSError as exc:
        raise CharlstmError(f"{path}: cannot create the model directory: {exc.strerror or exc}") from exc
    lock_path = path / LOCK_FILE
    fd: int | None = None
    try:
        fd = _acquire(lock_path, warn)
        _held.add(key)
        removed = remove_temp_files(path)
        if removed:
            warn(f"warning: {path}: removed {removed} temporary file(s) left by an interrupted save")
        yield path
    finally:
        if fd is not None:
            _held.discard(key)
            with contextlib.suppress(OSError):
                lock_path.unlink()  # before closing, so the file never names a free lock
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()


def _acquire(lock_path: Path, warn: Log) -> int:
    """Lock ``lock_path`` without waiting and write our pid in it; return its descriptor."""
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise CharlstmError(f"{lock_path}: cannot create the lock file: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd, wait=True)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise CharlstmError(
                f"{lock_path.parent}: {who} is training this model directory; "
                "wait for it to finish or choose another --model"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise CharlstmError(f"{lock_path}: cannot lock: {exc.strerror or exc}") from exc
        if _same_file(fd, lock_path):
            break
        os.close(fd)  # the previous holder removed the file as we opened it: retry
    previous = _holder(fd)
    if previous and previous != os.getpid():
        warn(f"warning: {lock_path}: taking over the lock of process {previous}, which is gone")
    with contextlib.suppress(OSError):  # on a full disk the lock holds without the pid
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(fd: int, wait: bool = False) -> int | None:
    """The pid written in the lock file, if any (``wait``: give a new holder a moment)."""
    for _ in range(10 if wait else 1):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if wait:
            time.sleep(0.02)
    return None
