"""Reading what people hand us (a path, an upload, raw bytes): never more than a cap, and from a
path only a regular file.

`cnnkit predict … /dev/zero` once read 22 GB before the OOM killer ended it, and a FIFO as
`--spec` read forever: a size from stat() is 0 for both, so the cap is applied to what is read,
and anything that is not a regular file (a directory, a device, a pipe) is refused first. The
path is opened non-blocking, so even opening a FIFO with no writer cannot hang.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from cnnkit.errors import UploadError


def _too_large(what: str, size: str, max_bytes: int) -> UploadError:
    return UploadError(f"the {what} is too large: {size} bytes, larger than the limit of {max_bytes:,} bytes")


def _read_path(path: str | os.PathLike, max_bytes: int, what: str) -> bytes:
    name = os.path.basename(os.fspath(path)) or os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name} does not exist") from None
    except OSError as exc:
        raise UploadError(f"cannot read the {what} {name}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device or a pipe)"
        raise UploadError(f"the {what} {name} is {kind}")
    if info.st_size > max_bytes:
        os.close(fd)
        raise _too_large(what, f"{info.st_size:,}", max_bytes)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(max_bytes + 1)  # a file that grows while we read still stops here


def read_bounded(data: Any, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of `data` (bytes, a file object such as Streamlit's UploadedFile, or a path),
    never more than max_bytes; UploadError (a ValueError too) says what was wrong."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif hasattr(data, "read"):
        raw = data.read(max_bytes + 1)  # one byte over the limit is enough to know
        if not isinstance(raw, bytes):
            raise UploadError(f"the {what} must be read as bytes, got {type(raw).__name__}")
    elif isinstance(data, (str, os.PathLike)):
        raw = _read_path(data, max_bytes, what)
    else:
        raise UploadError(f"expected the {what}'s bytes, got {type(data).__name__}")
    if len(raw) > max_bytes:
        raise _too_large(what, f"more than {max_bytes:,}", max_bytes)
    return raw


def read_upload(data: Any, max_bytes: int, what: str = "file") -> bytes:
    """`read_bounded`, refusing an empty file: what every upload reader starts with."""
    raw = read_bounded(data, max_bytes, what)
    if not raw:
        raise UploadError(f"the {what} is empty")
    return raw
