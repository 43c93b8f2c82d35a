"""The one error hierarchy of pixelmill.

Every failure a user can cause or meet is one of these classes; each carries the process exit
code that the command line uses for it (documented in the README), and its message names what was
wrong and what is allowed.
"""

from __future__ import annotations


class PixelmillError(Exception):
    """Base class: an internal error (exit code 1) unless a subclass says otherwise."""

    exit_code = 1
    kind = "internal"


class PipelineError(PixelmillError):
    """The pipeline text or JSON is invalid, or asks for something the output cannot hold."""

    exit_code = 2
    kind = "pipeline"


class UsageError(PixelmillError):
    """The command was called wrongly (arguments, options, destination naming)."""

    exit_code = 2
    kind = "usage"


class QueryError(UsageError):
    """A dataset query is not valid; the message points at the offending token."""

    kind = "query"


class MissingError(UsageError):
    """A named thing (a dataset, a version of one) does not exist."""

    kind = "missing"


class ModelError(PipelineError):
    """A model is unknown, fails to load, or does not match its manifest."""

    kind = "model"


class InputError(PixelmillError):
    """The input image is empty, truncated, corrupt, or in an unsupported format."""

    exit_code = 3
    kind = "input"


class LimitError(PixelmillError):
    """A safety limit (pixels, bytes, time) was exceeded."""

    exit_code = 4
    kind = "limit"


class StorageError(PixelmillError):
    """A source could not be read or a destination could not be written."""

    exit_code = 5
    kind = "storage"


class NotFoundError(StorageError):
    """A source does not exist: permanent, unlike a storage that cannot be reached."""

    kind = "not-found"


class QualityError(PixelmillError):
    """A quality gate (``qc`` step with on_fail=fail) found the result below its thresholds."""

    exit_code = 6
    kind = "quality"


class Cancelled(PixelmillError):
    """The run was stopped from outside (a signal, a cancelled job); nothing was written."""

    exit_code = 130
    kind = "cancelled"
