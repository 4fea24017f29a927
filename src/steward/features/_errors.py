"""Errors of the features context.

::

    StewardError
    └── FeatureStoreError                 base of this context
        ├── FeatureDefinitionError        definitions break a naming or reference rule
        │                                 (also an InvalidInputError)
        ├── SourceSchemaError             a source's columns no longer match its view
        │                                 (also an InvalidInputError)
        ├── EntityFrameError              an entity frame lacks keys or has bad timestamps
        │                                 (also an InvalidInputError)
        └── UnknownFeatureError           a ``view:feature`` reference names nothing
                                          registered (also a NotFoundError)

Each message names the offending object and what to do about it; an unknown
feature lists the closest registered names.
"""

from __future__ import annotations

from steward.core import InvalidInputError, NotFoundError, StewardError

__all__ = [
    "EntityFrameError",
    "FeatureDefinitionError",
    "FeatureStoreError",
    "SourceSchemaError",
    "UnknownFeatureError",
]


class FeatureStoreError(StewardError):
    """Base of the errors raised by the features context."""


class FeatureDefinitionError(FeatureStoreError, InvalidInputError):
    """Feature definitions break a naming rule, repeat a name or reference something missing."""


class SourceSchemaError(FeatureStoreError, InvalidInputError):
    """A source's files lack a column its view needs, or hold it with an incompatible type."""


class EntityFrameError(FeatureStoreError, InvalidInputError):
    """An entity frame lacks a join key or its timestamp column is missing or malformed."""


class UnknownFeatureError(FeatureStoreError, NotFoundError):
    """A feature, view or service reference names nothing in the registered definitions."""
