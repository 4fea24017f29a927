"""Align category counts between reference and current, and test them.

Unseen categories (present in current, absent from reference) get their own
bins with a reference count of 0: the chi-square test of homogeneity and the
Jensen-Shannon distance handle a zero on one side; PSI and KL floor it at
epsilon.  When the reference kept only its most frequent categories (the rest
pooled as "other"), a current category outside the kept ones is pooled into
"other" too: it may have been seen, so it is not called unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from steward.quality._input import Category

__all__ = ["OTHER", "Aligned", "align", "chi_square"]

IntArray = npt.NDArray[np.int64]

OTHER = "(other)"
"""Label of the bin pooling categories beyond the ones a profile keeps."""


@dataclass(frozen=True, eq=False)
class Aligned:
    """Reference and current counts over one shared list of categories."""

    keys: list[Category]
    reference: IntArray
    current: IntArray
    unseen: list[tuple[Category, int]]

    @property
    def unseen_count(self) -> int:
        """Current rows whose category the reference never had."""
        return sum(count for _, count in self.unseen)


def align(
    reference_keys: Sequence[Category],
    reference_counts: IntArray,
    reference_other: int,
    current_keys: Sequence[Category],
    current_counts: IntArray,
) -> Aligned:
    """Put reference and current counts side by side (reference categories first).

    Example:
        ``align(["a", "b"], [3, 1], 0, ["b", "c"], [2, 5])`` gives keys
        ``["a", "b", "c"]``, reference ``[3, 1, 0]``, current ``[0, 2, 5]`` and
        ``unseen == [("c", 5)]``.
    """
    index = {key: position for position, key in enumerate(reference_keys)}
    current = np.zeros(len(reference_keys), dtype=np.int64)
    unseen: list[tuple[Category, int]] = []
    pooled = 0
    for key, count in zip(current_keys, current_counts.tolist(), strict=True):
        position = index.get(key)
        if position is not None:
            current[position] += count
        elif reference_other:
            pooled += count
        else:
            unseen.append((key, count))
    keys = list(reference_keys)
    reference = np.asarray(reference_counts, dtype=np.int64)
    if reference_other:
        keys.append(OTHER)
        reference = np.append(reference, reference_other)
        current = np.append(current, pooled)
    unseen.sort(key=lambda item: -item[1])
    if unseen:
        keys.extend(key for key, _ in unseen)
        reference = np.concatenate((reference, np.zeros(len(unseen), dtype=np.int64)))
        current = np.concatenate((current, [count for _, count in unseen]))
    return Aligned(keys, reference, current, unseen)


def chi_square(aligned: Aligned) -> tuple[float, float]:
    """Chi-square test of homogeneity, as ``scipy.stats.chi2_contingency([ref, cur])``.

    Categories absent from both sides are dropped (their expected count is 0).
    scipy's default Yates correction applies when there are exactly two categories.
    """
    table = np.vstack((aligned.reference, aligned.current))
    table = table[:, table.sum(axis=0) > 0]
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)
