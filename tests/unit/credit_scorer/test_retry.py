"""The one retry policy (credit_scorer.retry): backoff, a budget of attempts, stopping, counting."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_scorer.exceptions import StoppedError
from credit_scorer.metrics import ScorerMetrics
from credit_scorer.retry import Backoff, retry_transient

FAST = Backoff(0.001, 0.002)


def flaky(failures: int, error: type[Exception] = ConnectionError) -> tuple[list[int], object]:
    """An operation failing ``failures`` times, then answering "ok"; the list counts the calls."""
    calls = [0]

    async def op() -> str:
        calls[0] += 1
        if calls[0] <= failures:
            raise error(f"down ({calls[0]})")
        return "ok"

    return calls, op


def retries(metrics: ScorerMetrics, dependency: str) -> float:
    return metrics.registry.get_sample_value("credit_scorer_retries_total", {"dependency": dependency}) or 0.0


def test_backoff_grows_exponentially_and_is_capped() -> None:
    b = Backoff(0.1, 2.0)
    assert 0.08 <= b.delay(1) <= 0.12
    assert 0.32 <= b.delay(3) <= 0.48
    assert all(b.delay(n) <= 2.4 for n in range(1, 60))


@given(st.integers(1, 10), st.integers(1, 50))
def test_a_budget_gives_up_after_exactly_max_attempts(max_attempts: int, attempt: int) -> None:
    assert Backoff(0.1, 1.0, max_attempts).gives_up_after(attempt) == (attempt >= max_attempts)
    assert not Backoff(0.1, 1.0).gives_up_after(attempt)  # no budget: until healed or stopped


def test_a_budget_of_no_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Backoff(0.1, 1.0, 0)


async def test_retry_transient_retries_then_succeeds_and_counts() -> None:
    metrics = ScorerMetrics()
    calls, op = flaky(2)
    got = await retry_transient(
        op,  # type: ignore[arg-type]
        dependency="redis",
        transient=(ConnectionError,),
        backoff=FAST,
        metrics=metrics,
    )
    assert got == "ok" and calls == [3]
    assert retries(metrics, "redis") == 2


async def test_a_budget_re_raises_the_last_fault_after_its_attempts() -> None:
    metrics = ScorerMetrics()
    calls, op = flaky(5)
    with pytest.raises(ConnectionError, match=r"down \(3\)"):
        await retry_transient(
            op,  # type: ignore[arg-type]
            dependency="redis",
            transient=(ConnectionError,),
            backoff=Backoff(0.001, 0.002, max_attempts=3),
            metrics=metrics,
        )
    assert calls == [3] and retries(metrics, "redis") == 2  # 3 tries, 2 retries between them


async def test_a_budget_of_one_attempt_never_retries() -> None:
    calls, op = flaky(1)
    with pytest.raises(ConnectionError):
        await retry_transient(
            op,  # type: ignore[arg-type]
            dependency="redis",
            transient=(ConnectionError,),
            backoff=Backoff(0.001, 0.002, max_attempts=1),
        )
    assert calls == [1]


async def test_a_budget_is_enough_when_the_fault_heals_in_time() -> None:
    calls, op = flaky(2)
    got = await retry_transient(
        op,  # type: ignore[arg-type]
        dependency="redis",
        transient=(ConnectionError,),
        backoff=Backoff(0.001, 0.002, max_attempts=3),
    )
    assert got == "ok" and calls == [3]


async def test_retry_transient_gives_up_only_when_stopping() -> None:
    metrics = ScorerMetrics()
    stopping = asyncio.Event()

    async def down() -> None:
        stopping.set()
        raise ConnectionError("down")

    with pytest.raises(StoppedError, match="kafka"):
        await retry_transient(
            down,
            dependency="kafka",
            transient=(ConnectionError,),
            backoff=FAST,
            metrics=metrics,
            stopping=stopping,
        )


async def test_stopping_interrupts_a_long_wait_at_once() -> None:
    stopping = asyncio.Event()
    calls, op = flaky(10)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stopping.set)
    started = loop.time()
    with pytest.raises(StoppedError):
        await retry_transient(
            op,  # type: ignore[arg-type]
            dependency="redis",
            transient=(ConnectionError,),
            backoff=Backoff(30.0, 30.0),
            stopping=stopping,
        )
    assert calls == [1] and loop.time() - started < 10.0  # not the 30 s delay


async def test_retry_transient_does_not_swallow_other_errors() -> None:
    calls, op = flaky(1, ValueError)  # a bug, not an outage
    with pytest.raises(ValueError):
        await retry_transient(
            op,  # type: ignore[arg-type]
            dependency="redis",
            transient=(ConnectionError,),
            backoff=FAST,
            metrics=ScorerMetrics(),
        )
    assert calls == [1]


def test_the_configured_delays_come_from_the_one_settings_object() -> None:
    from credit_scorer.settings import StreamSettings

    stream = StreamSettings(retry_initial_s=0.25, retry_max_s=3.0)
    assert Backoff.from_settings(stream) == Backoff(0.25, 3.0, None)
    assert Backoff.from_settings(stream, max_attempts=2).max_attempts == 2
