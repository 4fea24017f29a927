"""A deterministic synthetic card-fraud data set, with a later slice that drifts.

Columns: ``customer_id``, ``event_time``, ``amount``, ``merchant_category``,
``hour``, ``customer_age``, ``account_age_days``, ``txn_last_24h``, ``foreign``,
``gender`` (a protected attribute, kept for fairness checks, never a model input)
and ``is_fraud`` (the label).  The same seed gives the same rows on any machine.

The data carries a proxy on purpose: one group's accounts are younger on
average (opened in a recent card campaign), so ``account_age_days`` reveals
``gender`` and a model that uses it flags the two groups at different rates.
The demo's fairness gate catches that; the fix drops the proxy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["FEATURES", "LABEL", "PROTECTED", "PROXY", "make_fraud_data"]

FEATURES = [
    "amount",
    "hour",
    "customer_age",
    "account_age_days",
    "txn_last_24h",
    "foreign",
    "merchant_code",
]
LABEL = "is_fraud"
PROTECTED = "gender"
PROXY = "account_age_days"
CATEGORIES = ["grocery", "electronics", "travel", "fashion", "gaming", "fuel"]
_START = datetime(2026, 1, 1, tzinfo=UTC)


def _slice(rng: np.random.Generator, n: int, *, start_day: int, drift: float) -> dict[str, Any]:
    customers = rng.integers(1, 5_000, n)
    seconds = np.sort(rng.integers(0, 60 * 86_400, n)) + start_day * 86_400
    times = np.datetime64(_START.replace(tzinfo=None), "s") + seconds.astype("timedelta64[s]")
    category_p = np.array([0.3, 0.15, 0.1, 0.2, 0.1, 0.15])
    if drift:
        category_p = np.array([0.2, 0.25, 0.15, 0.15, 0.15, 0.10])
    merchant = rng.choice(len(CATEGORIES), n, p=category_p)
    amount = np.round(rng.lognormal(3.5 + 0.5 * drift, 1.0, n), 2)
    hour = rng.integers(0, 24, n)
    customer_age = np.clip(rng.normal(42, 13, n), 18, 90).round()
    gender = rng.choice(["female", "male"], n)
    # Mean account age 500 days for one group, 1,300 for the other: the built-in proxy.
    account_age = rng.exponential(np.where(gender == "female", 500.0, 1_300.0)).round()
    txn_24h = rng.poisson(2 + drift, n)
    foreign = rng.random(n) < 0.08 + 0.05 * drift
    logit = (
        -4.6
        + 0.45 * np.log1p(amount)
        + 1.8 * foreign
        + 1.2 * (merchant == 1)
        + 1.4 * (merchant == 4)
        + 1.1 * ((hour < 5) | (hour > 22))
        + 0.35 * txn_24h
        - 0.0015 * account_age
    )
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    return {
        "customer_id": customers,
        "event_time": times,
        "amount": amount,
        "merchant_category": np.array(CATEGORIES)[merchant],
        "merchant_code": merchant,
        "hour": hour,
        "customer_age": customer_age,
        "account_age_days": account_age,
        "txn_last_24h": txn_24h,
        "foreign": foreign.astype(np.int64),
        "gender": gender,
        LABEL: fraud.astype(np.int64),
    }


def make_fraud_data(rows: int = 20_000, *, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """Return ``(early, late)``: two months of transactions, then two drifted months.

    Example:
        >>> early, late = make_fraud_data(1_000)
        >>> early.num_rows, late.num_rows
        (1000, 500)
    """
    rng = np.random.default_rng(seed)
    early = pa.table(_slice(rng, rows, start_day=0, drift=0.0))
    late = pa.table(_slice(rng, rows // 2, start_day=60, drift=1.0))
    return early, late
