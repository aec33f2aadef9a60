"""The exceptions kiln raises: a failed call raises Error, or the subclass for
its status code, with kiln's message (it names the entry, tensor, node or file
at fault and what was expected)."""


class Error(RuntimeError):
    """A kiln call failed. `code` is the status code's name, e.g.
    "INVALID_ARGUMENT"; str(error) is kiln's message."""

    def __init__(self, message, code="UNKNOWN"):
        super().__init__(message)
        self.code = code


class InvalidArgumentError(Error, ValueError):
    """A bad argument: a wrong dtype or shape, a bad file, bad options."""


class NotFoundError(Error, LookupError):
    """No such backend, entry, input, output or state (the message lists those there are)."""


class AlreadyExistsError(Error):
    """An entry of that name exists already."""


class FailedPreconditionError(Error):
    """A call out of order: before prepare, before the first run, an input not set."""


class OutOfRangeError(Error, IndexError):
    """A value out of range found while running (a gather id, a cache row)."""


class ResourceExhaustedError(Error, MemoryError):
    """Out of host or device memory."""


class UnavailableError(Error):
    """A backend that cannot run here (no driver or device), or a lost device."""


class UnimplementedError(Error):
    """Not done by this backend or build (e.g. a zero-copy buffer on a device without host memory)."""


class InternalError(Error):
    """A fault inside kiln."""


_BY_CODE = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "OUT_OF_RANGE": OutOfRangeError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "UNAVAILABLE": UnavailableError,
    "UNIMPLEMENTED": UnimplementedError,
    "INTERNAL": InternalError,
}


def error_class(code):
    """The exception class for a status code's name (Error for the others)."""
    return _BY_CODE.get(code, Error)
