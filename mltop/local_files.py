"""Files the user names (config, kubeconfigs, tokens, CA bundles): only regular files are read.

A FIFO or a terminal device named by mistake would make a plain open() or read() wait forever
for a writer, and a directory gives a confusing error; each is refused here, as an OSError whose
`strerror` says what the path is instead. No third-party imports: adapters and config both use it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
# O_NONBLOCK: should the path become a FIFO between the check and the open, the open still
# returns at once (and the fstat after it refuses the FIFO). O_NOCTTY: never adopt a terminal.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFile(OSError):
    """The path exists but is not a regular file."""


def _refuse(mode: int, path: str | Path) -> NotRegularFile:
    kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
    return NotRegularFile(errno.EINVAL, f"not a regular file (it is {kind})", str(path))


def check_regular(path: str | Path) -> os.stat_result:
    """stat (following links); raises FileNotFoundError etc., or NotRegularFile."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(st.st_mode, path)
    return st


def read_regular(path: str | Path) -> bytes:
    """The whole file, never blocking on a FIFO or device. Raises OSError (see check_regular)."""
    check_regular(path)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(mode, path)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def read_problem(exc: OSError) -> str:
    """A few words for an OSError from read_regular: "not a regular file (it is a FIFO)",
    "cannot read (Permission denied)"."""
    if isinstance(exc, NotRegularFile):
        return exc.strerror
    return f"cannot read ({exc.strerror or exc})"


def why_unreadable(path: str | Path) -> str | None:
    """None when `path` is a regular file; else a few words why not, for a one-line error."""
    try:
        check_regular(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
