"""Personal data at rest (DESIGN §5.3): field encryption and the blind index.

Owner name, ID number and phone are stored only as AES-256-GCM blobs. Each blob names the
key that sealed it, so keys rotate without downtime: new writes use the active kid, old
blobs still decrypt with the retired key they name. The caller passes associated data
(for instance the table, column and row id) so that a blob copied into another row or
column fails to decrypt instead of silently showing someone else's data.

Blob layout, version 1::

    0x01 | len(kid) (1 byte) | kid (ASCII) | nonce (12 bytes) | ciphertext + tag (16 bytes)

ID numbers must also be found by value; a keyed HMAC (the blind index) allows equality
look-ups without storing the number, and without the key the index cannot be brute-forced
over the small space of valid ID numbers. Blind-index keys rotate too: an index made under
an envelope key starts with that key's one-byte number (``seq``, 1-255), so a stored index
says which key to check it with; a 32-byte index without the byte is under the original
key file (``blind-index.key``). Layout::

    seq (1 byte) | HMAC-SHA256(key[seq], value) (32 bytes)      or, legacy, the HMAC alone
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = 1
_NONCE_LEN = 12
_TAG_LEN = 16
_KEY_LEN = 32


class DecryptionFailed(Exception):
    """A blob is damaged, tampered with, bound to other data, or names an unknown key."""


class FieldCipher:
    """Encrypts single text fields under the active key; decrypts under any known key."""

    def __init__(self, keys: dict[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError(f"active kid {active_kid!r} is not among the keys")
        for kid, key in keys.items():
            if len(key) != _KEY_LEN:
                raise ValueError(f"key {kid!r} must be {_KEY_LEN} bytes for AES-256")
            if not kid.isascii() or not 0 < len(kid) < 256:
                raise ValueError(f"kid {kid!r} must be 1-255 ASCII characters")
        # AESGCM objects are built once per kid: bulk ingest encrypts tens of thousands
        # of fields a second, and key setup would otherwise dominate each call.
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = self._ciphers[active_kid]
        self._header = self.header_of(active_kid)
        self.kids = frozenset(keys)

    @staticmethod
    def header_of(kid: str) -> bytes:
        """The bytes every blob sealed under ``kid`` starts with (to find them in SQL)."""
        kid_bytes = kid.encode("ascii")
        return bytes((_VERSION, len(kid_bytes))) + kid_bytes

    def encrypt(self, plaintext: str, *, aad: bytes) -> bytes:
        # A random 96-bit nonce per field. NIST SP 800-38D caps random nonces at 2**32
        # encryptions per key, which is why the kid exists: rotate well before that.
        nonce = os.urandom(_NONCE_LEN)
        return self._header + nonce + self._active.encrypt(nonce, plaintext.encode("utf-8"), aad)

    def encrypt_many(self, plaintexts: Sequence[str], aads: Sequence[bytes]) -> list[bytes]:
        """``encrypt`` of each plaintext with its associated data, the blobs the same:
        for a chunk of thousands (the ledger's salts), one CSPRNG read for all nonces."""
        if len(plaintexts) != len(aads):
            raise ValueError("one associated data per plaintext")
        nonces = os.urandom(_NONCE_LEN * len(plaintexts))
        seal = self._active.encrypt
        header = self._header
        out: list[bytes] = []
        start = 0
        for plaintext, aad in zip(plaintexts, aads, strict=True):
            nonce = nonces[start : start + _NONCE_LEN]
            out.append(header + nonce + seal(nonce, plaintext.encode("utf-8"), aad))
            start += _NONCE_LEN
        return out

    def decrypt(self, blob: bytes, *, aad: bytes) -> str:
        kid = self.key_id_of(blob)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DecryptionFailed(f"blob was sealed with unknown key {kid!r}")
        start = 2 + len(kid)
        nonce = blob[start : start + _NONCE_LEN]
        try:
            plaintext = cipher.decrypt(nonce, blob[start + _NONCE_LEN :], aad)
        except InvalidTag:
            raise DecryptionFailed("blob is damaged or bound to other data") from None
        return plaintext.decode("utf-8")

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The kid a blob names, e.g. to find rows still under a retired key."""
        if len(blob) < 2 or blob[0] != _VERSION:
            raise DecryptionFailed("not a version-1 field blob")
        kid_len = blob[1]
        if len(blob) < 2 + kid_len + _NONCE_LEN + _TAG_LEN:
            raise DecryptionFailed("field blob is truncated")
        try:
            return blob[2 : 2 + kid_len].decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionFailed("field blob has a malformed key id") from None


class BlindIndex:
    """Keyed HMAC of a normalised value: equality search without the value in clear."""

    def __init__(self, key: bytes) -> None:
        if len(key) < _KEY_LEN:
            raise ValueError(f"blind index key must be at least {_KEY_LEN} bytes")
        self._key = key

    def compute(self, value: str) -> bytes:
        """32-byte index of `value`; callers normalise first (e.g. upper-case X in IDs)."""
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).digest()


class BlindIndexRing:
    """Blind indexes under several keys, each index naming its own (see the module doc).

    ``None`` is the legacy key, whose indexes carry no key byte. New indexes are made
    under ``active``; an index under any known key can be checked against a value, which
    is what lets a look-up match while a rotation has moved only some rows.
    """

    def __init__(self, keys: dict[int | None, bytes], active: int | None) -> None:
        if active not in keys:
            raise ValueError(f"active blind-index key {active!r} is not among the keys")
        for seq in keys:
            if seq is not None and not 0 < seq < 256:
                raise ValueError(f"blind-index key number {seq} must be 1-255")
        self._indexes = {seq: BlindIndex(key) for seq, key in keys.items()}
        self.active = active
        self.prefix = b"" if active is None else bytes((active,))
        self._active = self._indexes[active]

    def compute(self, value: str) -> bytes:
        return self.prefix + self._active.compute(value)

    @staticmethod
    def key_of(held: bytes) -> int | None:
        """The key number a stored index names; ValueError when it has no known shape."""
        if len(held) == _KEY_LEN:
            return None
        if len(held) == _KEY_LEN + 1 and held[0] != 0:
            return held[0]
        raise ValueError("not a blind index")

    def matches(self, held: bytes, value: str) -> bool | None:
        """Whether ``held`` is the index of ``value``; None when its key is unknown here."""
        try:
            seq = self.key_of(held)
        except ValueError:
            return False
        index = self._indexes.get(seq)
        if index is None:
            return None
        prefix = b"" if seq is None else held[:1]
        return hmac.compare_digest(held, prefix + index.compute(value))


class PersonalDataVault:
    """The ``PersonalData`` port: field encryption plus the ID-number blind index."""

    def __init__(self, cipher: FieldCipher, index: BlindIndex) -> None:
        self._index = index
        self.encrypt = cipher.encrypt
        self.decrypt = cipher.decrypt

    def blind_index(self, value: str) -> bytes:
        return self._index.compute(value)

    def blind_index_matches(self, held: bytes, given: str) -> bool:
        return hmac.compare_digest(held, self._index.compute(given))
