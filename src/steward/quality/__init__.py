"""Data quality statistics: schemas and validation, drift, fairness, segments and proxies.

Everything here is pure statistics over tables (pandas, pyarrow, Parquet/CSV
paths, dicts of columns) and 1-D arrays; it depends on ``steward.core`` only.

Example:
    >>> import numpy as np
    >>> from steward.quality import DriftDetector
    >>> rng = np.random.default_rng(1)
    >>> reference = {"x": rng.normal(size=2_000), "c": rng.choice(["a", "b"], 2_000)}
    >>> current = {"x": rng.normal(0.5, size=2_000), "c": rng.choice(["a", "b"], 2_000)}
    >>> DriftDetector().fit(reference).score(current).drifted_columns
    ('x',)
"""

from steward.quality._drift import DriftDetector
from steward.quality._errors import DataQualityError, NotFittedError, QualityError
from steward.quality._fairness import FairnessReport, GroupMetrics, evaluate_fairness
from steward.quality._profile import CategoricalProfile, NumericProfile, ProfileSettings
from steward.quality._proxies import ProxyAssociation, ProxyReport, detect_proxies
from steward.quality._reference import ReferenceProfile
from steward.quality._results import ColumnDrift, DriftReport, Histogram
from steward.quality._schema import Schema
from steward.quality._schema_diff import SchemaChange, SchemaDiff
from steward.quality._schema_types import ColumnSchema
from steward.quality._segments import CostMatrix, SegmentMetrics, SegmentReport, evaluate_segments
from steward.quality._validation import Issue, ValidationReport

__all__ = [
    "CategoricalProfile",
    "ColumnDrift",
    "ColumnSchema",
    "CostMatrix",
    "DataQualityError",
    "DriftDetector",
    "DriftReport",
    "FairnessReport",
    "GroupMetrics",
    "Histogram",
    "Issue",
    "NotFittedError",
    "NumericProfile",
    "ProfileSettings",
    "ProxyAssociation",
    "ProxyReport",
    "QualityError",
    "ReferenceProfile",
    "Schema",
    "SchemaChange",
    "SchemaDiff",
    "SegmentMetrics",
    "SegmentReport",
    "ValidationReport",
    "detect_proxies",
    "evaluate_fairness",
    "evaluate_segments",
]
