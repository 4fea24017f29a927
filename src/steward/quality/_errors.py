"""Errors of the quality context.

::

    StewardError
    └── QualityError               base of this context
        ├── DataQualityError       validation found errors; carries the report
        └── NotFittedError         a detector was used before ``fit``

Bad arguments and malformed data raise the shared
:class:`~steward.core.InvalidInputError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steward.core import StewardError

if TYPE_CHECKING:
    from steward.quality._validation import ValidationReport

__all__ = ["DataQualityError", "NotFittedError", "QualityError"]


class QualityError(StewardError):
    """Base of the errors raised by the quality context."""


class DataQualityError(QualityError):
    """Validation found errors; ``report`` holds every issue, errors and warnings.

    This is the exception a pipeline lets propagate to halt on bad data.
    """

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        errors = report.errors
        shown = "; ".join(issue.message for issue in errors[:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"data failed validation with {len(errors)} error(s): {shown}{more}")

    def __reduce__(self) -> tuple[type[DataQualityError], tuple[ValidationReport]]:
        # Rebuild from the report, so the error survives pickling (multiprocessing, Ray).
        return (type(self), (self.report,))


class NotFittedError(QualityError, AttributeError):
    """A statistical object was used before ``fit`` was called."""
