"""Envelope keys for personal data (DESIGN §5.3): data keys wrapped by a master key.

The data keys that seal fields and make blind indexes live in the database (``data_keys``),
each wrapped with AES-256-GCM under a master key that lives only in
``CTPLHUB_HOME/keys/master-keys.json``: a database dump alone decrypts nothing, and a new
data key reaches every process through the database at once, with no file to copy.

:class:`Keyring` is the ``PersonalData`` port of every process. It unwraps each data key
once and keeps it in memory (ingest seals tens of thousands of fields a second; the
database is not asked per field). It learns of new keys two ways: a ciphertext or index
under a key it does not know makes it re-read the table at once (so readers accept a key
the moment a rotation makes it), and writers re-read every ``KEY_REFRESH_S`` seconds (so
they move to a new active key within that long). The key files of installs older than
envelope keys (``pii-keys.json``, ``blind-index.key``) stay readable: until a data key is
active they remain the active keys, so nothing changes before the first rotation.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ctplhub.security.keystore import KeysMissing, new_kid
from ctplhub.security.pii import BlindIndexRing, FieldCipher
from ctplhub.services.key_ports import (
    ACTIVE,
    BLIND,
    FIELD,
    Markers,
    WrappedDataKey,
)

KEY_REFRESH_S = 2.0
_FORCED_RELOAD_MIN_S = 1.0  # a key id the table lacks is looked for at most once a second
_NONCE_LEN = 12
_KEY_LEN = 32
log = structlog.get_logger(__name__)


def _wrap_aad(kid: str, purpose: str, seq: int) -> bytes:
    # Binds a wrapped key to its row: a wrapped key copied to another kid fails to unwrap.
    return f"ctplhub data key|{kid}|{purpose}|{seq}".encode()


def wrap(master: bytes, kid: str, purpose: str, seq: int, key: bytes) -> bytes:
    nonce = os.urandom(_NONCE_LEN)
    return nonce + AESGCM(master).encrypt(nonce, key, _wrap_aad(kid, purpose, seq))


def unwrap(master: bytes, kid: str, purpose: str, seq: int, wrapped: bytes) -> bytes:
    nonce, sealed = wrapped[:_NONCE_LEN], wrapped[_NONCE_LEN:]
    try:
        return AESGCM(master).decrypt(nonce, sealed, _wrap_aad(kid, purpose, seq))
    except InvalidTag:
        raise KeysMissing(
            f"data key {kid} does not unwrap under master key: wrong or damaged master key"
        ) from None


@dataclass(frozen=True)
class _State:
    cipher: FieldCipher
    blind: BlindIndexRing
    markers: Markers


class Keyring:
    """Field encryption and blind indexes over the legacy key files plus the data keys."""

    def __init__(
        self,
        *,
        legacy_keys: dict[str, bytes],
        legacy_active_kid: str,
        legacy_blind_key: bytes,
        master_keys: dict[str, bytes],
        active_master_kid: str | None,
        load: Callable[[], Sequence[WrappedDataKey]],
        reread_masters: Callable[[], tuple[dict[str, bytes], str | None]] | None = None,
        refresh_s: float = KEY_REFRESH_S,
    ) -> None:
        self._legacy_keys = dict(legacy_keys)
        self._legacy_active = legacy_active_kid
        self._legacy_blind = legacy_blind_key
        self._masters = dict(master_keys)
        self._active_master = active_master_kid
        self._load = load
        self._reread_masters = reread_masters
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._unwrapped: dict[tuple[str, str, bytes], bytes] = {}
        self._seen: tuple[tuple[str, str, str], ...] | None = None
        self._missing: dict[object, float] = {}
        self._due = 0.0
        self._state = self._build(())
        self.encrypt = self._state.cipher.encrypt
        self.encrypt_many = self._state.cipher.encrypt_many
        try:
            self.reload()
        except KeysMissing:
            raise  # a missing or wrong master key is the operator's to fix: say so now
        except Exception as error:  # the database is down: start, and read it on first use
            log.warning("data_keys_refresh_failed", error_type=type(error).__name__)

    # -- the PersonalData port -------------------------------------------------------
    def decrypt(self, blob: bytes, *, aad: bytes) -> str:
        self._tick()
        kid = FieldCipher.key_id_of(blob)
        if kid not in self._state.cipher.kids:
            self._reload_for(kid, lambda: kid in self._state.cipher.kids)
        return self._state.cipher.decrypt(blob, aad=aad)

    def blind_index(self, value: str) -> bytes:
        self._tick()
        return self._state.blind.compute(value)

    def blind_index_matches(self, held: bytes, given: str) -> bool:
        """Whether the stored index ``held`` is that of ``given``, under whichever key
        made it: one HMAC, as before rotation existed. Called on the event loop: only an
        index under a key this process has never seen (once per rotation) reads the
        table, a few rows, there."""
        matched = self._state.blind.matches(held, given)
        if matched is None:
            self._reload_for(held[:1], lambda: self._state.blind.matches(held, given) is not None)
            matched = self._state.blind.matches(held, given)
        return bool(matched)

    # -- what a rotation needs -------------------------------------------------------
    def reload(self) -> None:
        """Re-read the data keys now (raises when the database or a master key fails)."""
        with self._lock:
            self._install(self._load())

    def markers(self) -> Markers:
        return self._state.markers

    def new_data_key(self, purpose: str, seq: int, at: datetime) -> WrappedDataKey:
        master_kid, master = self._master()
        kid = new_kid("dk" if purpose == FIELD else "bk")
        wrapped = wrap(master, kid, purpose, seq, secrets.token_bytes(_KEY_LEN))
        return WrappedDataKey(kid, purpose, seq, wrapped, master_kid, ACTIVE, at)

    def rewrapped(self, key: WrappedDataKey) -> WrappedDataKey:
        """``key`` wrapped under the active master key."""
        master_kid, master = self._master()
        plain = self._unwrap(key)
        return replace(
            key, wrapped=wrap(master, key.kid, key.purpose, key.seq, plain), master_kid=master_kid
        )

    # -- internals ----------------------------------------------------------------------
    def _master(self) -> tuple[str, bytes]:
        if self._active_master is None:
            raise KeysMissing("master-keys.json is missing: run `ctplhub init` to create it")
        return self._active_master, self._masters[self._active_master]

    def _tick(self) -> None:
        if time.monotonic() >= self._due:
            self._refresh_quietly()

    def _refresh_quietly(self) -> None:
        # Writers call this in the middle of their work: a failed read keeps the keys
        # known so far (every one of them still decrypts) and is tried again later.
        if not self._lock.acquire(blocking=False):
            return  # another thread is reading the table right now
        try:
            self._install(self._load())
        except Exception as error:
            self._due = time.monotonic() + self._refresh_s
            log.warning("data_keys_refresh_failed", error_type=type(error).__name__)
        finally:
            self._lock.release()

    def _reload_for(self, unknown: object, known: Callable[[], bool]) -> None:
        """Re-read the table for a key id met in the data; a key id still unknown after
        that (a damaged row) is not looked for again within a second."""
        now = time.monotonic()
        if now - self._missing.get(unknown, -_FORCED_RELOAD_MIN_S) < _FORCED_RELOAD_MIN_S:
            return
        with self._lock:
            try:
                self._install(self._load())
            except Exception as error:
                log.warning("data_keys_refresh_failed", error_type=type(error).__name__)
        if known():
            self._missing.pop(unknown, None)
        else:
            self._missing[unknown] = now

    def _install(self, rows: Sequence[WrappedDataKey]) -> None:
        self._due = time.monotonic() + self._refresh_s
        seen = tuple((k.kid, k.state, k.master_kid) for k in rows)
        if seen == self._seen:
            return
        state = self._build(rows)
        self._state = state
        self.encrypt = state.cipher.encrypt
        self.encrypt_many = state.cipher.encrypt_many
        self._seen = seen

    def _build(self, rows: Sequence[WrappedDataKey]) -> _State:
        field_keys = dict(self._legacy_keys)
        blind_keys: dict[int | None, bytes] = {None: self._legacy_blind}
        active_kid, active_seq = self._legacy_active, None
        for key in sorted(rows, key=lambda k: k.seq):
            plain = self._unwrap(key)
            if key.purpose == FIELD:
                field_keys[key.kid] = plain
                active_kid = key.kid if key.state == ACTIVE else active_kid
            elif key.purpose == BLIND:
                blind_keys[key.seq] = plain
                active_seq = key.seq if key.state == ACTIVE else active_seq
        cipher = FieldCipher(field_keys, active_kid)
        blind = BlindIndexRing(blind_keys, active_seq)
        return _State(cipher, blind, Markers(FieldCipher.header_of(active_kid), blind.prefix))

    def _unwrap(self, key: WrappedDataKey) -> bytes:
        cached = self._unwrapped.get((key.kid, key.master_kid, key.wrapped))
        if cached is not None:
            return cached
        master = self._masters.get(key.master_kid)
        if master is None and self._reread_masters is not None:
            # `ctplhub keys rotate-master` ran elsewhere: its new file is read, no restart.
            self._masters, self._active_master = self._reread_masters()
            master = self._masters.get(key.master_kid)
        if master is None:
            raise KeysMissing(
                f"data key {key.kid} is wrapped by master key {key.master_kid}, which is not"
                " in master-keys.json"
            )
        plain = unwrap(master, key.kid, key.purpose, key.seq, key.wrapped)
        self._unwrapped[(key.kid, key.master_kid, key.wrapped)] = plain
        return plain
