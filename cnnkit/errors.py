"""Exceptions with messages meant for people, not stack traces."""


def shown(value: object, limit: int = 60) -> str:
    """`value` quoted for a message, cut to `limit` characters: a 5,000-character run id from a
    URL must not come back in full, and control characters are escaped by repr."""
    text = repr(str(value))
    return text if len(text) <= limit + 2 else f"{text[:limit]}…' ({len(str(value)):,} characters)"


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
