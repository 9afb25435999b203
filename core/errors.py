"""One error type for the whole service.

Services raise ``ApplicationError`` (or a subclass); the API's exception handler and the
page views turn it into ``{"code", "message", "extra"}`` with the class's HTTP status.
"""

import errno
from typing import Any


class ApplicationError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    status_code = 400
    default_code = "invalid"


class NotFound(ApplicationError):
    status_code = 404
    default_code = "not_found"


class PermissionDenied(ApplicationError):
    status_code = 403
    default_code = "permission_denied"


class Conflict(ApplicationError):
    status_code = 409
    default_code = "conflict"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    default_code = "too_large"


class TooManyRequests(ApplicationError):
    status_code = 429
    default_code = "throttled"


STORAGE_READ_ONLY = "storage_read_only"
STORAGE_FULL = "storage_full"
STORAGE_UNAVAILABLE = "storage_unavailable"


class StorageUnavailable(ApplicationError):
    """The media storage refused a write; whoever raises it has kept nothing partial.

    ``code`` is ``storage_read_only``, ``storage_full`` or ``storage_unavailable``. The
    message is for whoever sees it (an API client, a page, an operator's terminal), so it
    never names a path: the path is logged where the fault is met.
    """

    status_code = 503
    default_code = STORAGE_UNAVAILABLE


_STORAGE_FAULTS: dict[int, tuple[str, str]] = {
    errno.EROFS: (
        STORAGE_READ_ONLY,
        "The media storage is read-only; nothing was saved. Ask the operator to make the "
        "media folder writable by Chorus, then try again.",
    ),
    errno.EACCES: (
        STORAGE_READ_ONLY,
        "The media storage does not let Chorus write; nothing was saved. Ask the operator "
        "to make the media folder writable by Chorus, then try again.",
    ),
    errno.EPERM: (
        STORAGE_READ_ONLY,
        "The media storage does not let Chorus write; nothing was saved. Ask the operator "
        "to make the media folder writable by Chorus, then try again.",
    ),
    errno.ENOSPC: (
        STORAGE_FULL,
        "The media storage is full; nothing was saved. Ask the operator to free space on "
        "the media volume, then try again.",
    ),
    errno.EDQUOT: (
        STORAGE_FULL,
        "The media storage is over its quota; nothing was saved. Ask the operator to free "
        "space or raise the quota of the media volume, then try again.",
    ),
}
_STORAGE_FAULT_OTHER = (
    STORAGE_UNAVAILABLE,
    "The media storage could not save the file; nothing was saved. Ask the operator to "
    "check the media volume (the server log names the error), then try again.",
)


def storage_error(error: OSError) -> StorageUnavailable:
    """The ``StorageUnavailable`` for an ``OSError`` met while writing media, by errno."""
    code, message = _STORAGE_FAULTS.get(error.errno or 0, _STORAGE_FAULT_OTHER)
    return StorageUnavailable(message, code=code)
