"""Circuit breaker states, retry hints, timeouts and the error tree."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import BackendUnavailableError, InvalidInputError
from steward.serving._resilience import (
    CircuitBreaker,
    CircuitOpenError,
    ModelTimeoutError,
    OverloadedError,
    RateLimitedError,
    RetryLaterError,
    timeout_error,
)


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _breaker(ticks: Ticks, **kwargs: float) -> CircuitBreaker:
    settings = {"failure_threshold": 3, "window_s": 10.0, "cooldown_s": 5.0, "success_threshold": 2}
    settings.update(kwargs)
    return CircuitBreaker("variant 'cand'", clock=ticks, **settings)  # type: ignore[arg-type]


def _fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.acquire()
        breaker.record_failure()


def test_breaker_opens_after_threshold_failures_in_window() -> None:
    ticks = Ticks()
    breaker = _breaker(ticks)
    _fail(breaker, 2)
    assert breaker.state == "closed"
    _fail(breaker)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="variant 'cand' is open") as caught:
        breaker.acquire()
    assert caught.value.retry_after_s == pytest.approx(5.0)
    ticks.now = 3.0
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.retry_after_s == pytest.approx(2.0)
    assert caught.value.retry_after_header == "2"


def test_breaker_forgets_failures_outside_the_window() -> None:
    ticks = Ticks()
    breaker = _breaker(ticks)
    _fail(breaker, 2)
    ticks.now = 10.5
    _fail(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.snapshot().recent_failures == 2


def test_breaker_successes_do_not_reset_closed_failures() -> None:
    ticks = Ticks()
    breaker = _breaker(ticks)
    _fail(breaker, 2)
    breaker.acquire()
    breaker.record_success()
    _fail(breaker)
    assert breaker.state == "open"


def test_breaker_half_open_probes_then_closes() -> None:
    ticks = Ticks()
    breaker = _breaker(ticks)
    _fail(breaker, 3)
    ticks.now = 5.0
    assert breaker.state == "half_open"
    breaker.acquire()  # the one probe slot
    with pytest.raises(CircuitOpenError, match="half-open"):
        breaker.acquire()
    breaker.record_success()
    assert breaker.state == "half_open"
    breaker.acquire()
    breaker.record_success()
    assert breaker.state == "closed"
    _fail(breaker, 2)
    assert breaker.state == "closed"  # the old failures were cleared on closing


def test_breaker_half_open_failure_reopens_for_a_new_cooldown() -> None:
    ticks = Ticks()
    breaker = _breaker(ticks)
    _fail(breaker, 3)
    ticks.now = 6.0
    _fail(breaker)
    assert breaker.state == "open"
    ticks.now = 10.0
    assert breaker.state == "open"
    ticks.now = 11.0
    assert breaker.state == "half_open"
    assert breaker.snapshot().opened_count == 2


def test_breaker_allows_several_probes_when_configured() -> None:
    ticks = Ticks()
    breaker = _breaker(ticks, half_open_probes=3)
    _fail(breaker, 3)
    ticks.now = 5.0
    for _ in range(3):
        breaker.acquire()
    with pytest.raises(CircuitOpenError):
        breaker.acquire()


@given(st.lists(st.tuples(st.sampled_from(["ok", "fail", "tick"]), st.floats(0, 3)), max_size=80))
@settings(max_examples=200)
def test_breaker_state_machine_invariants(events: list[tuple[str, float]]) -> None:
    ticks = Ticks()
    breaker = _breaker(ticks)
    for event, dt in events:
        if event == "tick":
            ticks.now += dt
            continue
        refused: CircuitOpenError | None = None
        try:
            breaker.acquire()
        except CircuitOpenError as exc:
            refused = exc
        if refused is not None:
            assert refused.retry_after_s > 0
            assert breaker.state in ("open", "half_open")
            continue
        if event == "ok":
            breaker.record_success()
        else:
            breaker.record_failure()
        snap = breaker.snapshot()
        assert snap.recent_failures < 3
        assert snap.state in ("closed", "open", "half_open")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be >= 1"),
        ({"success_threshold": 1.5}, "success_threshold"),
        ({"half_open_probes": True}, "half_open_probes"),
        ({"window_s": 0}, "window_s must be > 0"),
        ({"cooldown_s": float("inf")}, "cooldown_s"),
    ],
)
def test_breaker_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        CircuitBreaker("x", **kwargs)  # type: ignore[arg-type]


def test_retry_later_errors_form_the_documented_tree_and_pickle() -> None:
    for cls in (OverloadedError, CircuitOpenError, RateLimitedError):
        error = cls("busy", retry_after_s=0.2)
        assert isinstance(error, RetryLaterError)
        assert isinstance(error, BackendUnavailableError)
        assert error.retry_after_header == "1"
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is cls and again.retry_after_s == 0.2 and str(again) == "busy"
    assert RetryLaterError("x", retry_after_s=-3).retry_after_s == 0.0
    assert issubclass(ModelTimeoutError, BackendUnavailableError)


def test_timeout_error_names_the_model_the_limit_and_the_way_out() -> None:
    error = timeout_error("variant 'cand' (fraud/8)", 0.25)
    assert isinstance(error, ModelTimeoutError)
    assert str(error).startswith("variant 'cand' (fraud/8) did not answer within 0.25 s")
    assert "declare a fallback" in str(error)
