"""Exceptions with messages meant for people, not stack traces."""

import errno


def is_disk_full(exc: BaseException) -> bool:
    """The machine ran out of disk (or quota): a state to report plainly, not a bug to trace."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def shown(value: object, limit: int = 60) -> str:
    """A short, safe rendering of someone's value for a message: repr (control characters
    escaped), cut to `limit` characters, so a 5,000-character run id never comes back whole."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints over 4300 digits, lists nested ~1000 deep
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class CnnkitError(Exception):
    """Base class: every error cnnkit raises on purpose. Its message is shown as is."""


class SpecError(CnnkitError, ValueError):
    """An experiment spec is invalid; `field` names where (e.g. ``layers[2].filters``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class ArchitectureError(SpecError):
    """The layers are valid one by one, but cannot be stacked (a shape problem)."""


class DataError(CnnkitError):
    """A dataset is missing, corrupt or of the wrong shape."""


class RunError(CnnkitError):
    """A run folder is missing, damaged or in the wrong state for the request."""


class WorkspaceError(CnnkitError):
    """A workspace setting (CNNKIT_WORKSPACES) or a workspace key is invalid."""


class UploadError(CnnkitError, ValueError):
    """An uploaded file was refused; the message says why, in words for the person uploading."""
