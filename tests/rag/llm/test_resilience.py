"""Retries, backoff and the client-side rate limiter, on a fake model and a fake clock."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence

import pytest

from rag._errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    LlmError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from rag.llm._resilience import RateLimiter, ResilientChatModel, RetryPolicy
from rag.llm._types import ChatDelta, ChatEvent, ChatRequest, ChatResponse, Message, Usage


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class TopRng(random.Random):
    """Always the top of the jitter range, so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


Outcome = ChatResponse | LlmError
StreamOutcome = Sequence[ChatEvent | LlmError]


class FakeModel:
    provider = "fake"
    model = "fake-model"

    def __init__(
        self, outcomes: Sequence[Outcome] = (), streams: Sequence[StreamOutcome] = ()
    ) -> None:
        self.outcomes = list(outcomes)
        self.streams = list(streams)
        self.calls = 0
        self.closed = False

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, LlmError):
            raise outcome
        return outcome

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        self.calls += 1
        for item in self.streams.pop(0):
            if isinstance(item, LlmError):
                raise item
            yield item

    def close(self) -> None:
        self.closed = True


def answer(total: int = 30) -> ChatResponse:
    return ChatResponse("ok", "stop", Usage(total - 5, 5, total), "fake-model")


REQUEST = ChatRequest((Message("user", "x" * 400),), "fake-model", max_tokens=100)


def resilient(
    model: FakeModel, *, max_retries: int = 4, limiter: RateLimiter | None = None
) -> tuple[ResilientChatModel, FakeTime]:
    t = FakeTime()
    policy = RetryPolicy(max_retries, backoff_s=1.0, max_backoff_s=8.0, max_retry_after_s=120)
    return ResilientChatModel(model, policy, limiter, sleep=t.sleep, rng=TopRng()), t


# -- the policy --


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(10, backoff_s=1.0, max_backoff_s=8.0)
    assert [policy.backoff(n, TopRng()) for n in range(6)] == [1, 2, 4, 8, 8, 8]
    assert policy.backoff(500, TopRng()) == 8  # no overflow for absurd attempt numbers


def test_jitter_spreads_over_the_whole_range() -> None:
    policy = RetryPolicy(10, backoff_s=1.0, max_backoff_s=8.0)
    rng = random.Random(7)
    delays = [policy.backoff(2, rng) for _ in range(500)]
    assert all(0 <= d <= 4 for d in delays)
    assert min(delays) < 0.4 and max(delays) > 3.6


def test_policy_retries_only_retryable_errors_within_budget() -> None:
    policy = RetryPolicy(2, backoff_s=1.0, max_backoff_s=8.0, max_retry_after_s=60)
    rng = TopRng()
    assert policy.delay(ProviderUnavailableError("x", status=503), 0, rng) == 1
    assert policy.delay(ProviderTimeoutError("x"), 1, rng) == 2
    assert policy.delay(ProviderUnavailableError("x"), 2, rng) is None  # budget spent
    assert policy.delay(RateLimitError("x", retry_after=10), 0, rng) == pytest.approx(11)
    assert policy.delay(RateLimitError("x", retry_after=61), 0, rng) is None
    assert policy.delay(RateLimitError("x"), 1, rng) == 2  # no advice: backoff
    for error in (AuthenticationError("x"), BadRequestError("x"), ContentFilterError("x")):
        assert policy.delay(error, 0, rng) is None


# -- retries around a model --


def test_unavailable_then_success_counts_attempts() -> None:
    model = FakeModel(
        [ProviderUnavailableError("down", status=500), ProviderTimeoutError("slow"), answer()]
    )
    chat, t = resilient(model)
    response = chat.complete(REQUEST)
    assert response.content == "ok" and response.attempts == 3
    assert t.sleeps == [1.0, 2.0]
    assert model.calls == 3


def test_retry_after_is_honoured_with_a_little_jitter() -> None:
    model = FakeModel([RateLimitError("slow down", retry_after=7), answer()])
    chat, t = resilient(model)
    assert chat.complete(REQUEST).attempts == 2
    assert len(t.sleeps) == 1 and 7 <= t.sleeps[0] <= 7.7


def test_retry_after_too_long_raises_at_once() -> None:
    model = FakeModel([RateLimitError("quota", retry_after=500), answer()])
    chat, t = resilient(model)
    with pytest.raises(RateLimitError) as info:
        chat.complete(REQUEST)
    assert info.value.retry_after == 500 and info.value.status == 429
    assert "llm.max_retry_after_s" in str(info.value) and "after 1 attempt)" in str(info.value)
    assert t.sleeps == [] and model.calls == 1


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("bad key", status=401),
        BadRequestError("bad field", status=422),
        ContentFilterError("filtered", status=400),
    ],
)
def test_refusals_are_not_retried(error: LlmError) -> None:
    model = FakeModel([error, answer()])
    chat, t = resilient(model)
    with pytest.raises(type(error)) as info:
        chat.complete(REQUEST)
    assert info.value is error and "attempt" not in str(error)
    assert model.calls == 1 and t.sleeps == []


def test_exhausted_retries_raise_the_last_error_with_the_attempt_count() -> None:
    model = FakeModel(
        [ProviderUnavailableError("down", provider="fake", status=500 + i) for i in range(3)]
    )
    chat, t = resilient(model, max_retries=2)
    with pytest.raises(ProviderUnavailableError) as info:
        chat.complete(REQUEST)
    assert str(info.value) == "down (after 3 attempts)"
    assert info.value.status == 502 and info.value.provider == "fake"
    assert model.calls == 3 and t.sleeps == [1.0, 2.0]


def test_retry_logs_status_and_delay_but_no_content(caplog: pytest.LogCaptureFixture) -> None:
    secret = "<PERSON_3f9a1c2b> said"
    model = FakeModel([ProviderUnavailableError(secret, status=503), answer()])
    chat, _ = resilient(model)
    with caplog.at_level("WARNING", logger="rag.llm._resilience"):
        chat.complete(REQUEST)
    assert "503" in caplog.text and "retry 1 of 4" in caplog.text
    assert secret not in caplog.text


def test_close_closes_the_inner_model() -> None:
    model = FakeModel()
    chat, _ = resilient(model)
    chat.close()
    assert model.closed


# -- streams --


def test_stream_retries_a_failure_before_the_first_event() -> None:
    final = answer()
    model = FakeModel(
        streams=[
            [ProviderUnavailableError("reset")],
            [ChatDelta("o"), ChatDelta("k"), final],
        ]
    )
    chat, t = resilient(model)
    events = list(chat.stream(REQUEST))
    assert [e.text for e in events if isinstance(e, ChatDelta)] == ["o", "k"]
    last = events[-1]
    assert isinstance(last, ChatResponse) and last.attempts == 2
    assert t.sleeps == [1.0]


def test_stream_failure_after_the_first_event_is_raised() -> None:
    model = FakeModel(streams=[[ChatDelta("o"), ProviderUnavailableError("reset")], [answer()]])
    chat, t = resilient(model)
    seen: list[ChatEvent] = []
    with pytest.raises(ProviderUnavailableError) as info:
        for event in chat.stream(REQUEST):
            seen.append(event)
    assert seen == [ChatDelta("o")] and str(info.value) == "reset"
    assert model.calls == 1 and t.sleeps == []


def test_stream_refusal_is_not_retried() -> None:
    model = FakeModel(streams=[[AuthenticationError("bad key")], [answer()]])
    chat, _ = resilient(model)
    with pytest.raises(AuthenticationError):
        list(chat.stream(REQUEST))
    assert model.calls == 1


# -- the rate limiter --


def limiter(tpm: int | None, rpm: int | None) -> tuple[RateLimiter, FakeTime]:
    t = FakeTime()
    return RateLimiter(tpm, rpm, clock=t.clock, sleep=t.sleep), t


def test_requests_per_minute_block_until_the_window_moves() -> None:
    lim, t = limiter(None, 2)
    lim.acquire(10)
    t.now = 5.0
    lim.acquire(10)
    assert t.sleeps == []
    lim.acquire(10)  # the first request leaves the window at t=60
    assert t.now == pytest.approx(60.0)
    assert max(t.sleeps) <= 1.0  # waits in slices, so refunds are noticed
    assert lim.in_window() == (2, 20)


def test_tokens_per_minute_block_until_enough_tokens_leave() -> None:
    lim, t = limiter(100, None)
    lim.acquire(60)
    t.now = 10.0
    lim.acquire(30)
    t.now = 20.0
    lim.acquire(50)  # needs the 60 from t=0 to leave
    assert t.now == pytest.approx(60.0)
    assert lim.in_window() == (2, 80)


def test_settle_gives_back_over_reserved_tokens() -> None:
    lim, t = limiter(100, None)
    reservation = lim.acquire(80)
    lim.settle(reservation, 20)
    lim.acquire(70)
    assert t.sleeps == []
    assert lim.in_window() == (2, 90)
    lim.settle(reservation, 30)  # used more than estimated: counted too
    assert lim.in_window() == (2, 100)


def test_settle_after_the_window_moved_changes_nothing() -> None:
    lim, t = limiter(100, None)
    reservation = lim.acquire(80)
    t.now = 61.0
    lim.acquire(10)
    lim.settle(reservation, 5)
    assert lim.in_window() == (1, 10)


def test_a_request_larger_than_the_budget_goes_through_alone() -> None:
    lim, t = limiter(100, None)
    lim.acquire(10)
    t.now = 30.0
    lim.acquire(500)  # waits for the window to empty, then passes
    assert t.now == pytest.approx(60.0)
    lim.acquire(1)  # and the next one waits for it to leave
    assert t.now == pytest.approx(120.0)


def test_no_limits_never_wait() -> None:
    lim, t = limiter(None, None)
    for _ in range(1000):
        lim.acquire(10**9)
    assert t.sleeps == []


def test_concurrent_acquires_do_not_overshoot() -> None:
    lim, t = limiter(1000, None)
    barrier = threading.Barrier(10)

    def take() -> None:
        barrier.wait(timeout=5)
        lim.acquire(100)

    threads = [threading.Thread(target=take) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=5)
    assert lim.in_window() == (10, 1000) and t.sleeps == []


def test_shared_limiters_are_one_per_key() -> None:
    a = RateLimiter.shared(("azure", "https://x", "m-test"), 100, 10)
    assert RateLimiter.shared(("azure", "https://x", "m-test"), 100, 10) is a
    assert RateLimiter.shared(("azure", "https://y", "m-test"), 100, 10) is not a


def test_the_model_settles_with_usage_and_refunds_failures() -> None:
    lim, _ = limiter(10_000, 100)
    model = FakeModel([ProviderUnavailableError("down"), answer(total=42)])
    chat, _ = resilient(model, limiter=lim)
    assert REQUEST.estimated_tokens() == 201
    chat.complete(REQUEST)
    assert lim.in_window() == (2, 42)  # both requests count, only the answer's tokens do


def test_the_model_waits_for_the_limiter() -> None:
    lim, lt = limiter(None, 1)
    chat, _ = resilient(FakeModel([answer(), answer()]), limiter=lim)
    chat.complete(REQUEST)
    chat.complete(REQUEST)
    assert lt.now == pytest.approx(60.0)
