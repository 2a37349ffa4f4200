"""Retries with backoff, and a client-side rate limiter shared by the whole process.

Every adapter raises the same typed errors, so one wrapper retries them all: 429s wait
their Retry-After, 5xx / timeouts / resets back off exponentially with full jitter, and
refusals (credentials, bad requests, content filter) are raised at once. The limiter keeps
the process under the deployment's tokens- and requests-per-minute quota, so 429s stay
the exception rather than the way the quota is found.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from typing import ClassVar

from rag._config import LlmSettings
from rag._errors import LlmError, RateLimitError
from rag.llm._types import ChatEvent, ChatModel, ChatRequest, ChatResponse

log = logging.getLogger(__name__)

#: The limiter's window: provider quotas are per minute.
WINDOW_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (the ``llm.*`` retry settings)."""

    max_retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0

    @classmethod
    def from_settings(cls, llm: LlmSettings) -> RetryPolicy:
        return cls(llm.max_retries, llm.backoff_s, llm.max_backoff_s, llm.max_retry_after_s)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_backoff, backoff·2^retry)], retry from 0."""
        cap = min(self.max_backoff_s, self.backoff_s * 2.0 ** min(retry, 60))
        return rng.uniform(0.0, cap)

    def delay(self, error: LlmError, retry: int, rng: random.Random) -> float | None:
        """Seconds before retry number ``retry`` (from 0) after ``error``; None: raise it."""
        if not error.retryable or retry >= self.max_retries:
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after_s:
                return None
            # A little jitter, so clients told the same moment do not all come back at it.
            return error.retry_after + rng.uniform(0.0, min(1.0, 0.1 * error.retry_after))
        return self.backoff(retry, rng)


class _Entry:
    __slots__ = ("at", "live", "tokens")

    def __init__(self, at: float, tokens: int) -> None:
        self.at = at
        self.tokens = tokens
        self.live = True


@dataclass(frozen=True)
class Reservation:
    """What :meth:`RateLimiter.acquire` took; hand it to :meth:`RateLimiter.settle`."""

    tokens: int
    _entry: _Entry | None = None


class RateLimiter:
    """Sliding one-minute window over requests and tokens; thread-safe.

    ``acquire`` blocks until both budgets allow the request. A request larger than the
    whole token budget goes through alone once the window is empty, so it is slow but
    never deadlocks. None turns a limit off. Waiting sleeps in slices of at most
    ``poll_s`` so tokens given back by :meth:`settle` are seen soon.
    """

    _shared: ClassVar[dict[Hashable, RateLimiter]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        tokens_per_minute: int | None,
        requests_per_minute: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 1.0,
    ) -> None:
        self.tokens_per_minute = tokens_per_minute
        self.requests_per_minute = requests_per_minute
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._entries: deque[_Entry] = deque()
        self._used = 0

    @classmethod
    def shared(
        cls, key: Hashable, tokens_per_minute: int | None, requests_per_minute: int | None
    ) -> RateLimiter:
        """One limiter per ``key`` (provider, endpoint, model) and limits, process-wide,
        so every client of one deployment draws on one quota."""
        full_key = (key, tokens_per_minute, requests_per_minute)
        with cls._shared_lock:
            limiter = cls._shared.get(full_key)
            if limiter is None:
                limiter = cls._shared[full_key] = cls(tokens_per_minute, requests_per_minute)
            return limiter

    @property
    def unlimited(self) -> bool:
        return self.tokens_per_minute is None and self.requests_per_minute is None

    def in_window(self) -> tuple[int, int]:
        """``(requests, tokens)`` counted in the current window."""
        with self._lock:
            self._expire(self._clock())
            return len(self._entries), self._used

    def acquire(self, tokens: int) -> Reservation:
        """Wait until ``tokens`` more and one more request fit in the window; take them."""
        tokens = max(0, tokens)
        if self.unlimited:
            return Reservation(tokens)
        while True:
            with self._lock:
                now = self._clock()
                self._expire(now)
                wait = self._wait(now, tokens)
                if wait <= 0:
                    entry = _Entry(now, tokens)
                    self._entries.append(entry)
                    self._used += tokens
                    return Reservation(tokens, entry)
            log.debug("rate limiter: waiting %.2f s for %d tokens", wait, tokens)
            self._sleep(min(wait, self._poll_s))

    def settle(self, reserved: Reservation, actual: int) -> None:
        """Replace the reservation's estimate by the tokens actually used (usage)."""
        entry = reserved._entry
        if entry is None:
            return
        with self._lock:
            if entry.live:
                self._used += max(0, actual) - entry.tokens
                entry.tokens = max(0, actual)

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0].at <= now - WINDOW_S:
            entry = self._entries.popleft()
            entry.live = False
            self._used -= entry.tokens

    def _fits(self, count: int, used: int, tokens: int) -> bool:
        rpm, tpm = self.requests_per_minute, self.tokens_per_minute
        if rpm is not None and count >= rpm:
            return False
        return tpm is None or used + tokens <= tpm or count == 0

    def _wait(self, now: float, tokens: int) -> float:
        """Seconds until the request fits, as the oldest entries leave the window."""
        count, used = len(self._entries), self._used
        if self._fits(count, used, tokens):
            return 0.0
        for entry in self._entries:
            count, used = count - 1, used - entry.tokens
            if self._fits(count, used, tokens):
                return max(entry.at + WINDOW_S - now, 1e-3)
        raise AssertionError("unreachable: an empty window always fits")


class ResilientChatModel:
    """A ChatModel that rate-limits, retries and counts attempts around ``inner``.

    A failed attempt gives its reserved tokens back (the request still counts against
    requests per minute). A stream is retried only if it failed before its first event;
    after that the error is raised as is (the caller already showed part of the answer).
    """

    def __init__(
        self,
        inner: ChatModel,
        policy: RetryPolicy,
        limiter: RateLimiter | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.policy = policy
        self.limiter = limiter or RateLimiter(None, None)
        self._sleep = sleep
        self._rng = rng or random.Random()

    def complete(self, request: ChatRequest) -> ChatResponse:
        estimate = request.estimated_tokens()
        attempts = 0
        while True:
            attempts += 1
            reservation = self.limiter.acquire(estimate)
            try:
                response = self.inner.complete(request)
            except LlmError as exc:
                self.limiter.settle(reservation, 0)
                self._sleep(self._delay_or_raise(exc, attempts))
                continue
            self.limiter.settle(reservation, response.usage.total_tokens or estimate)
            return replace(response, attempts=attempts)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        estimate = request.estimated_tokens()
        attempts = 0
        while True:
            attempts += 1
            reservation = self.limiter.acquire(estimate)
            started = False
            events = self.inner.stream(request)
            try:
                for event in events:
                    if isinstance(event, ChatResponse):
                        used = event.usage.total_tokens or estimate
                        self.limiter.settle(reservation, used)
                        event = replace(event, attempts=attempts)
                    started = True
                    yield event
                return
            except LlmError as exc:
                if started:
                    raise
                self.limiter.settle(reservation, 0)
                delay = self._delay_or_raise(exc, attempts)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            self._sleep(delay)

    def close(self) -> None:
        self.inner.close()

    def _delay_or_raise(self, exc: LlmError, attempts: int) -> float:
        delay = self.policy.delay(exc, attempts - 1, self._rng)
        if delay is None:
            if not exc.retryable:
                raise exc
            note = ""
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None and retry_after > self.policy.max_retry_after_s:
                note = (
                    f"; Retry-After {retry_after:g} s is over "
                    f"llm.max_retry_after_s={self.policy.max_retry_after_s:g}"
                )
            plural = "s" if attempts != 1 else ""
            exc.args = (f"{exc}{note} (after {attempts} attempt{plural})", *exc.args[1:])
            raise exc
        log.warning(
            "%s: %s (HTTP %s), retry %d of %d in %.2f s",
            self.provider,
            type(exc).__name__,
            exc.status if exc.status is not None else "-",
            attempts,
            self.policy.max_retries,
            delay,
        )
        return delay
