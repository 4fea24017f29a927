"""The sample of materialized values that a run's profile (its drift baseline) is built from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from steward.quality import ProfileSettings, ReferenceProfile

__all__ = ["PROFILE_ROWS", "PROFILE_SETTINGS", "ValueSample"]

PROFILE_ROWS = 100_000
# Profiles are stored with every run: keep them small (a sketch of 500 order statistics).
PROFILE_SETTINGS = ProfileSettings(bins=10, exact_limit=500, sketch_size=500, max_categories=50)


class ValueSample:
    """A uniform sample of at most ``cap`` rows over a stream of batches (bottom-k keys).

    Each row gets a random key; the ``cap`` smallest keys seen so far are kept,
    so memory is bounded by ``cap`` whatever the number of batches.
    """

    def __init__(self, columns: Sequence[str], cap: int = PROFILE_ROWS) -> None:
        self.columns = list(columns)
        self.cap = cap
        self._rng = np.random.default_rng(0)
        self._table: pa.Table | None = None
        self._keys = np.empty(0)

    def add(self, batch: pa.RecordBatch) -> None:
        """Offer a batch's rows (only the sampled columns are kept)."""
        if not self.columns or batch.num_rows == 0:
            return
        part = pa.Table.from_batches([batch.select(self.columns)])
        keys = self._rng.random(part.num_rows)
        if self._table is not None:
            part = pa.concat_tables([self._table, part])
            keys = np.concatenate([self._keys, keys])
        if len(keys) > self.cap:
            kept = np.argpartition(keys, self.cap)[: self.cap]
            part, keys = part.take(pa.array(kept)), keys[kept]
        self._table, self._keys = part, keys

    def profile(self) -> ReferenceProfile | None:
        """Return the sample's profile (None: no rows, or no column could be profiled)."""
        if self._table is None or self._table.num_rows == 0:
            return None
        profile = ReferenceProfile.build(self._table, settings=PROFILE_SETTINGS, n_jobs=1)
        return profile if profile.columns else None
