"""The access hook of every feature read, historical and online.

Reading a feature classified PII needs the ``features:read:pii`` scope on its
view; other features need ``features:read``.  Checks go through
``Store.authorize``, the seam governance implements (until then the configured
identity's scopes decide).  A read that includes PII features is audited as
``features.read_pii`` — who, which view, which features, how many rows — and
the values are never logged.  The audit is written before the values are
returned: a read that cannot be recorded does not happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from steward.features._definitions import FeatureView
from steward.store import Store

__all__ = ["PII_SCOPE", "READ_SCOPE", "authorize_feature_read"]

READ_SCOPE = "features:read"
PII_SCOPE = "features:read:pii"


def authorize_feature_read(
    store: Store,
    views: Sequence[tuple[FeatureView, Sequence[str]]],
    *,
    rows: int,
    path: Literal["historical", "online"],
) -> None:
    """Check the caller may read these features; audit the PII ones.

    Args:
        store: the store bound to the caller's principal.
        views: each view with the feature names requested from it.
        rows: how many entity rows the read returns (recorded for PII reads).
        path: which read path asks (recorded for PII reads).

    Raises:
        PermissionDeniedError: the caller lacks ``features:read`` or
            ``features:read:pii`` on a view (the denial is audited).
    """
    pii_reads: list[tuple[str, list[str]]] = []
    for view, features in views:
        resource = f"feature_view:{view.name}"
        pii = [name for name in features if view.feature(name).pii]
        if len(pii) < len(features):
            store.authorize(READ_SCOPE, resource=resource)
        if pii:
            store.authorize(PII_SCOPE, resource=resource)
            pii_reads.append((view.name, pii))
    if not pii_reads:
        return
    with store.unit_of_work() as uow:
        for name, pii in pii_reads:
            uow.audit(
                "features.read_pii",
                "feature_view",
                name,
                {"features": pii, "rows": rows, "path": path, "principal": store.principal.name},
            )
