"""Staff passwords, kept only as Argon2id hashes (argon2-cffi).

The parameters are OWASP's Password Storage Cheat Sheet minimum for Argon2id: 19 MiB of
memory, 2 passes, 1 lane, a 16-byte salt and a 32-byte tag; about 70 ms of one core
here while other work runs. RFC 9106's 64 MiB x 3 passes x 4 lanes measured 450-650 ms
on our two-core machines, and each sign-in attempt would hold both cores: a cheap way
to slow the server down. A guess against a stolen table costs as much as a check, and
sign-in is throttled besides (``security/throttle_rules.py``). The parameters travel
inside each PHC string (``$argon2id$v=19$m=19456,t=2,p=1$…``), so hashes made today
still verify after they are raised.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


@cache
def _nobody() -> str:
    """Checked when an account has no password or does not exist, so that a failed
    sign-in takes as long whatever the reason and its timing does not tell which names
    exist. Made on first use: processes that never sign anyone in skip the cost."""
    return _HASHER.hash("no such account: the time of a check is spent all the same")


def hash_password(password: str) -> str:
    """The PHC string of an Argon2id hash of ``password`` with a fresh salt."""
    return _HASHER.hash(password)


def password_matches(encoded: str | None, password: str) -> bool:
    """Whether ``password`` is the one hashed in ``encoded`` (``None``: no account or
    no password, which never matches but costs the same time)."""
    try:
        return _HASHER.verify(encoded or _nobody(), password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False
