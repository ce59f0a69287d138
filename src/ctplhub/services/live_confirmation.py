"""Live confirmation (DESIGN §10): before a police or regulator verify says "not covered"
while an insurer that may hold the truth is stale, ask that insurer.

A wrong "uninsured" is the worst answer the registry can give (§2.6), and the usual cause
is an insurer whose renewals reach the registry late. An insurer may therefore register
an endpoint (``PUT /v1/insurers/{code}/confirm-endpoint``); a verify item that is
``LAPSED`` or ``NO_RECORD`` while such an insurer is stale gets a signed POST of
``{"plate", "vin", "at"}`` to it, and the insurer's ``{"covered", ...}`` becomes the
item's ``confirmed_by``.

Budgets (the verify stays fast whatever an insurer does):
- each call has ``call_budget_s`` (1.5 s); all calls of one verify end by ``started +
  total_budget_s`` (1.7 s after the verify began), so the whole answer, signed, leaves
  within 2 s; a call that cannot finish in time is abandoned and the item keeps the
  registry's own answer with a ``confirmation_unavailable`` caveat;
- one verify sends at most ``per_insurer_concurrency`` calls at a time to one insurer
  (the rest queue, and give up when the verify's budget is spent);
- an insurer that keeps failing is not asked at all for a while (``CircuitBreaker``).

Only items that need it pay: the endpoints are read (and cached ``ttl_s``) only when an
item is bad news while a relevant insurer is stale, and a verify with no such item does
no work here at all. The breaker's state is per process (a process that restarts, or a
second worker, learns an insurer's failures again after ``failure_threshold`` calls):
it protects this process's verify latency, which is all it is for, and a shared store
would cost every confirmation a round trip.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from ctplhub.domain.errors import InsurerMismatch, UnknownInsurer, ValidationFailed
from ctplhub.domain.freshness import Caveat
from ctplhub.domain.records import fast_init
from ctplhub.services.ports import Clock

CALL_BUDGET_S = 1.5  # DESIGN §10: per call
TOTAL_BUDGET_S = 1.7  # all calls of one verify; the answer is signed and sent within 2 s
MAX_URL_LEN = 2000


@fast_init
@dataclass(frozen=True, slots=True)
class ConfirmTarget:
    """Where and as whom to ask one insurer: its URL and its newest API key (the request
    is signed by §5.1 with the insurer's own secret, so it can check it is us)."""

    insurer_code: str
    url: str
    key_id: str
    secret: str


@fast_init
@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """A stored endpoint with its insurer's newest in-force key, still sealed."""

    insurer_code: str
    url: str
    key_id: str
    secret_enc: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class RegisteredEndpoint:
    insurer_code: str
    url: str | None  # None: removed
    updated_at: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class ConfirmAsk:
    """One verify item to confirm: what is sent, and whom to ask (``None``: every
    certified stale insurer with an endpoint, for ``NO_RECORD``)."""

    plate: str | None  # display form
    vin: str | None
    at: datetime
    insurers: frozenset[str] | None


@fast_init
@dataclass(frozen=True, slots=True)
class ConfirmReply:
    covered: bool
    policy_no: str | None
    coverage_end: datetime | None


@fast_init
@dataclass(frozen=True, slots=True)
class Confirmation:
    """An item's ``confirmed_by``: which insurer answered, when, and its word."""

    insurer_code: str
    at: datetime
    covered: bool


@fast_init
@dataclass(frozen=True, slots=True)
class ConfirmOutcome:
    confirmed_by: Confirmation | None
    caveats: tuple[Caveat, ...]


class ConfirmFailed(Exception):
    """The insurer's endpoint answered nothing usable; ``reason`` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfirmSession(Protocol):
    async def confirm(self, target: ConfirmTarget, ask: ConfirmAsk) -> ConfirmReply:
        """POST the signed question; raise ``ConfirmFailed`` for any unusable answer.
        The caller bounds the time (cancellation must be prompt)."""
        ...


class ConfirmTransport(Protocol):
    """The outbound HTTP (``security/live_confirm_client.py``): one session per verify."""

    def session(self) -> AbstractAsyncContextManager[ConfirmSession]: ...


class ConfirmEndpointStore(Protocol):
    """``store/repositories/confirm_endpoints.py``; blocking calls (run off the loop)."""

    def put(self, insurer_code: str, url: str | None, at: datetime) -> None: ...
    def get(self, insurer_code: str) -> tuple[str, datetime] | None: ...
    def certified_with_keys(self, now: datetime) -> list[EndpointRecord]:
        """Every certified insurer's endpoint with its newest key valid at ``now``."""
        ...


class ConfirmObserver(Protocol):
    """Where each call's outcome is told (``security/live_confirm_metrics.py``: a log line
    and Prometheus series). Only the insurer's code, a short result and a duration: never
    the plate, the VIN or the instant asked about."""

    def call_finished(self, insurer_code: str, result: str, seconds: float | None) -> None:
        """``result``: ``covered``, ``not_covered`` or a failure reason (``timeout``,
        ``unreachable``, ``http_503``, ``circuit_open`` …); ``seconds`` is ``None`` for a
        call that was never sent."""
        ...

    def breaker_changed(self, insurer_code: str, state: str) -> None:
        """The insurer's breaker is now ``open`` or ``closed``."""
        ...

    def verify_finished(
        self, insurer_code: str, results: Mapping[str, int], slowest_s: float | None
    ) -> None:
        """One verify's calls to one insurer, counted by result: one log line for a
        verify of 10,000 items, not 10,000."""
        ...


class _Unobserved:
    def call_finished(self, insurer_code: str, result: str, seconds: float | None) -> None:
        return None

    def verify_finished(
        self, insurer_code: str, results: Mapping[str, int], slowest_s: float | None
    ) -> None:
        return None

    def breaker_changed(self, insurer_code: str, state: str) -> None:
        return None


class CircuitBreaker:
    """Per-insurer breaker (closed → open → half-open), state in this process only.

    ``failure_threshold`` consecutive failed calls open it: the insurer is then not asked
    for ``open_s`` seconds (items get the caveat at once). After that one trial call is let
    through (half-open); its success closes the breaker, its failure opens it again.
    ``monotonic`` is injected so tests can move time.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        open_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._open_s = open_s
        self._monotonic = monotonic
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._trial: set[str] = set()  # insurers whose half-open trial call is in flight

    def state(self, code: str) -> str:
        until = self._open_until.get(code)
        if until is None:
            return "closed"
        return "open" if self._monotonic() < until or code in self._trial else "half_open"

    def allow(self, code: str) -> bool:
        """Whether a call to ``code`` may go now (taking the half-open trial if it is)."""
        until = self._open_until.get(code)
        if until is None:
            return True
        if self._monotonic() < until or code in self._trial:
            return False
        self._trial.add(code)
        return True

    def success(self, code: str) -> None:
        self._failures.pop(code, None)
        self._open_until.pop(code, None)
        self._trial.discard(code)

    def failure(self, code: str) -> None:
        count = self._failures.get(code, 0) + 1
        self._failures[code] = count
        if code in self._trial or count >= self._threshold:
            self._open_until[code] = self._monotonic() + self._open_s
        self._trial.discard(code)

    def abandon(self, code: str) -> None:
        """A call given up for the verify's sake, not the insurer's fault: a half-open
        trial is released without a verdict."""
        self._trial.discard(code)


def check_url(raw: object) -> str | None:
    """An endpoint URL as registered: absolute ``https://`` or ``http://`` with a host,
    no credentials or fragment, at most 2,000 characters; ``None`` removes it."""
    if raw is None:
        return None
    problem = None
    if not isinstance(raw, str) or not raw:
        problem = "a string"
    elif len(raw) > MAX_URL_LEN:
        problem = f"at most {MAX_URL_LEN} characters"
    else:
        try:
            parts = urlsplit(raw)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if (
            parts is None
            or not port_ok
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.fragment
            or any(ch.isspace() for ch in raw)
        ):
            problem = "an absolute http(s) URL with a host, no credentials or fragment"
    if problem is not None:
        raise ValidationFailed(
            f"url must be {problem}", details=[{"field": "url", "problem": problem}]
        )
    assert isinstance(raw, str)
    return raw


class LiveConfirmation:
    def __init__(
        self,
        store: ConfirmEndpointStore,
        transport: ConfirmTransport,
        unseal: Callable[[EndpointRecord], str],
        clock: Clock,
        *,
        ttl_s: float = 1.0,
        call_budget_s: float = CALL_BUDGET_S,
        total_budget_s: float = TOTAL_BUDGET_S,
        per_insurer_concurrency: int = 32,
        breaker: CircuitBreaker | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        known_insurer: Callable[[str], bool] | None = None,
        observer: ConfirmObserver | None = None,
    ) -> None:
        self._store = store
        self._transport = transport
        self._unseal = unseal
        self._clock = clock
        self._ttl_s = ttl_s
        self._call_budget_s = call_budget_s
        self._total_budget_s = total_budget_s
        self._concurrency = per_insurer_concurrency
        self.breaker = breaker or CircuitBreaker(monotonic=monotonic)
        self._monotonic = monotonic
        self._known = known_insurer
        self._observer: ConfirmObserver = observer or _Unobserved()
        self._read_at = -math.inf
        self._targets: dict[str, ConfirmTarget] = {}

    # -- registration ---------------------------------------------------------------
    def register(self, code: str, raw_url: object, *, caller: str) -> RegisteredEndpoint:
        """``PUT /v1/insurers/{code}/confirm-endpoint``: only the insurer itself; a null
        ``url`` removes the endpoint. Every process sees it within ``ttl_s``."""
        if code != caller:
            raise InsurerMismatch(f"this key belongs to insurer {caller}")
        url = check_url(raw_url)
        now = self._clock()
        self._store.put(code, url, now)
        self._read_at = -math.inf  # this process at once
        return RegisteredEndpoint(code, url, now)

    def registered(self, code: str, *, caller: str) -> RegisteredEndpoint:
        if code != caller:
            raise InsurerMismatch(f"this key belongs to insurer {caller}")
        found = self._store.get(code)
        if found is None:
            if self._known is not None and not self._known(code):
                raise UnknownInsurer(f"no insurer {code}")
            return RegisteredEndpoint(code, None, self._clock())
        return RegisteredEndpoint(code, found[0], found[1])

    # -- the verify's side ----------------------------------------------------------
    async def askable(self, stale_certified: Iterable[str]) -> frozenset[str]:
        """The stale certified insurers that have an endpoint: whom a verify may ask.
        Empty (and then the verify does nothing more) when none has one."""
        stale = frozenset(stale_certified)
        if not stale:
            return stale
        targets = await self._endpoints()
        return frozenset(code for code in stale if code in targets)

    async def confirm(
        self, asks: Sequence[ConfirmAsk], stale_certified: Iterable[str], *, started: float
    ) -> list[ConfirmOutcome | None]:
        """One outcome per ask (``None``: nobody to ask, the item is left alone), every
        call over by ``started + total_budget_s`` (``started`` on ``monotonic``)."""
        targets = await self._endpoints()
        if not targets:
            return [None] * len(asks)
        stale = frozenset(stale_certified)
        per_ask: list[tuple[str, ...]] = []
        calls: dict[tuple[str, str | None, str | None, datetime], None] = {}
        for ask in asks:
            wanted = stale if ask.insurers is None else ask.insurers & stale
            codes = tuple(sorted(code for code in wanted if code in targets))
            per_ask.append(codes)
            for code in codes:
                calls[(code, ask.plate, ask.vin, ask.at)] = None
        if not calls:
            return [None] * len(asks)
        deadline = started + self._total_budget_s
        answers = await self._call_all(list(calls), targets, deadline)
        return [
            self._outcome(codes, ask, answers) if codes else None
            for ask, codes in zip(asks, per_ask, strict=True)
        ]

    async def _endpoints(self) -> dict[str, ConfirmTarget]:
        now = self._monotonic()
        if not self._read_at <= now < self._read_at + self._ttl_s:
            records = await asyncio.to_thread(self._store.certified_with_keys, self._clock())
            self._targets = {
                r.insurer_code: ConfirmTarget(r.insurer_code, r.url, r.key_id, self._unseal(r))
                for r in records
            }
            self._read_at = self._monotonic()
        return self._targets

    async def _call_all(
        self,
        calls: list[tuple[str, str | None, str | None, datetime]],
        targets: dict[str, ConfirmTarget],
        deadline: float,
    ) -> dict[tuple[str, str | None, str | None, datetime], ConfirmReply | str]:
        gates = {code: asyncio.Semaphore(self._concurrency) for code, *_ in calls}
        tally: dict[str, dict[str, int]] = {}
        slowest: dict[str, float] = {}
        async with self._transport.session() as session:

            async def one(
                key: tuple[str, str | None, str | None, datetime],
            ) -> ConfirmReply | str:
                code = key[0]
                async with gates[code]:
                    began = self._monotonic()
                    was_open = self.breaker.state(code) != "closed"
                    answer, sent = await self._call_one(session, targets[code], key, deadline)
                    result = answer if isinstance(answer, str) else _word(answer)
                    seconds = self._monotonic() - began if sent else None
                    self._observer.call_finished(code, result, seconds)
                    tally.setdefault(code, {}).setdefault(result, 0)
                    tally[code][result] += 1
                    if seconds is not None and seconds > slowest.get(code, -1.0):
                        slowest[code] = seconds
                    is_open = self.breaker.state(code) != "closed"
                    if was_open != is_open:
                        self._observer.breaker_changed(code, "open" if is_open else "closed")
                    return answer

            replies = await asyncio.gather(*(one(key) for key in calls))
        for code, results in tally.items():
            self._observer.verify_finished(code, results, slowest.get(code))
        return dict(zip(calls, replies, strict=True))

    async def _call_one(
        self,
        session: ConfirmSession,
        target: ConfirmTarget,
        key: tuple[str, str | None, str | None, datetime],
        deadline: float,
    ) -> tuple[ConfirmReply | str, bool]:
        """One call within what is left of the verify's budget: the reply or why not,
        and whether the call was sent at all."""
        code, plate, vin, at = key
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            return "verify_budget_spent", False
        if not self.breaker.allow(code):
            return "circuit_open", False
        try:
            async with asyncio.timeout(min(self._call_budget_s, remaining)):
                reply = await session.confirm(target, ConfirmAsk(plate, vin, at, None))
        except TimeoutError:
            if remaining < self._call_budget_s:  # cut short by the verify
                self.breaker.abandon(code)
                return "verify_budget_spent", True
            self.breaker.failure(code)
            return "timeout", True
        except ConfirmFailed as failed:
            self.breaker.failure(code)
            return failed.reason, True
        self.breaker.success(code)
        return reply, True

    def _outcome(
        self,
        codes: tuple[str, ...],
        ask: ConfirmAsk,
        answers: dict[tuple[str, str | None, str | None, datetime], ConfirmReply | str],
    ) -> ConfirmOutcome:
        """The first insurer (by code) that says covered wins; else the first that
        answered at all; every insurer that did not answer gets a caveat."""
        now = self._clock()
        said: list[tuple[str, ConfirmReply]] = []
        caveats: list[Caveat] = []
        for code in codes:
            answer = answers[(code, ask.plate, ask.vin, ask.at)]
            if isinstance(answer, ConfirmReply):
                said.append((code, answer))
            else:
                caveats.append(unavailable_caveat(code, answer))
        chosen = next((pair for pair in said if pair[1].covered), said[0] if said else None)
        confirmed = Confirmation(chosen[0], now, chosen[1].covered) if chosen else None
        return ConfirmOutcome(confirmed, tuple(caveats))


def _word(reply: ConfirmReply) -> str:
    return "covered" if reply.covered else "not_covered"


_REASONS = {
    "timeout": f"it did not answer within {CALL_BUDGET_S} s",
    "verify_budget_spent": "the verify's time budget ran out before it answered",
    "circuit_open": "it has failed repeatedly and is not being asked for a while",
}


def unavailable_caveat(code: str, reason: str) -> Caveat:
    why = _REASONS.get(reason, f"its endpoint failed ({reason})")
    return Caveat(
        "confirmation_unavailable",
        code,
        f"{code} could not confirm this answer live: {why}; the registry's own answer "
        "stands, and a renewal made there after its last sync may not show yet.",
    )
