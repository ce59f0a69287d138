"""The throttling rules, their defaults and the grammar of ``CTPLHUB_RATE_LIMITS`` (§5.3).

Grammar (case-insensitive, spaces ignored around names and values)::

    CTPLHUB_RATE_LIMITS = ""                      # every default below
                        | "off"                   # no limits at all (load tests only)
                        | override ("," override)*
    override            = rule "=" limit          # one rule; the others keep their default
    limit               = the `limits` library's grammar: "<amount>/<granularity>" or
                          "<amount> per <multiple> <granularity>s", e.g. "10/hour",
                          "30/10 minutes", "120 per minute"; granularity is one of
                          second, minute, hour, day, month, year

A rule named twice, an unknown rule, a value the library cannot read, a limit of zero or
more than one limit for a rule refuse to start: a typo must not leave the registry
unthrottled or silently throttled at the wrong rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from limits import RateLimitItem, parse_many

FAILED_PER_PLATE = "failed_per_plate"
"""Failed verifications (wrong VIN tail or ID number) of one plate, from any client."""
FAILED_PER_CLIENT = "failed_per_client"
"""Failed verifications from one client address, whatever the plate."""
UNVERIFIED_PER_CLIENT = "unverified_per_client"
"""Look-ups without a verification factor (the short answer) from one client address."""
SIGN_IN_PER_CLIENT = "sign_in_per_client"
"""Staff sign-in attempts from one client address, successful or not."""
SIGN_IN_PER_ACCOUNT = "sign_in_per_account"
"""Staff sign-in attempts on one account name, from any client, counted before the password
is checked (successes included), so that guesses sent at once cannot all be tried."""

DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        FAILED_PER_PLATE: "10/hour",  # DESIGN §5.3
        FAILED_PER_CLIENT: "30/10 minutes",  # DESIGN §5.3
        UNVERIFIED_PER_CLIENT: "60/minute",  # DESIGN §5.3
        # Ours: a person mistyping a password tries a few times, not thirty; an office
        # behind one address signs in a few dozen people at the start of a shift.
        SIGN_IN_PER_CLIENT: "30/10 minutes",
        # Ours: OWASP's "lock out after a handful of failures", as a slow-down that ends
        # by itself, so that a stranger cannot lock an officer out for longer than an hour.
        SIGN_IN_PER_ACCOUNT: "10/hour",
    }
)


class RateLimitsInvalid(ValueError):
    """``CTPLHUB_RATE_LIMITS`` cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class RateLimits:
    """What ``CTPLHUB_RATE_LIMITS`` asks for: ``enabled`` False only for ``off``."""

    enabled: bool
    items: Mapping[str, RateLimitItem] = field(default_factory=dict)


def parse_rate_limits(value: str | None) -> RateLimits:
    """The limits a setting asks for, or :class:`RateLimitsInvalid` naming the problem."""
    text = (value or "").strip()
    if text.lower() == "off":
        return RateLimits(enabled=False)
    chosen = dict(DEFAULTS)
    named: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, equals, limit = (s.strip() for s in part.partition("="))
        name = name.lower()
        if not equals or not name or not limit:
            raise RateLimitsInvalid(
                f"CTPLHUB_RATE_LIMITS: {part!r} is not rule=limit (e.g. failed_per_plate=10/hour)"
            )
        if name not in DEFAULTS:
            raise RateLimitsInvalid(
                f"CTPLHUB_RATE_LIMITS: unknown rule {name!r}; the rules are {', '.join(DEFAULTS)}"
            )
        if name in named:
            raise RateLimitsInvalid(f"CTPLHUB_RATE_LIMITS: {name} is set twice")
        named.add(name)
        chosen[name] = limit
    return RateLimits(enabled=True, items={name: _item(name, v) for name, v in chosen.items()})


def _item(name: str, value: str) -> RateLimitItem:
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount < 1:
        raise RateLimitsInvalid(
            f"CTPLHUB_RATE_LIMITS: {name}={value!r} is not one limit of at least 1, such as "
            "'10/hour', '30/10 minutes' or '60 per minute'"
        )
    return items[0]
