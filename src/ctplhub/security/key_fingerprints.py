"""Fingerprints of the key files' keys, written into a backup's manifest (``ctplhub
backup``) so that a restore can tell, before it touches anything, whether the keys under
``CTPLHUB_HOME/keys`` are the ones the backed-up data was sealed, indexed and signed with.

A fingerprint is a truncated SHA-256 of a domain tag and the key: every key here is 32
random bytes (or an Ed25519 seed), so it reveals nothing of the key, and a backup, which
holds no key, stays useless to whoever steals it (docs/DECISIONS.md, "Backup").
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ctplhub.security.keystore import Keys

_TAG = b"ctplhub-backup-key-fingerprint\x00"


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(_TAG + key).hexdigest()[:32]


def key_fingerprints(keys: Keys) -> dict[str, str]:
    """``{"<set>/<kid>": fingerprint}`` of every key of every key file."""
    found = {f"pii/{kid}": _fingerprint(key) for kid, key in keys.pii_keys.items()}
    found |= {f"master/{kid}": _fingerprint(key) for kid, key in keys.master_keys.items()}
    found |= {
        f"signing/{kid}": _fingerprint(
            key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        for kid, key in keys.signing_keys.items()
    }
    found["blind-index"] = _fingerprint(keys.blind_index_key)
    found["access-log"] = _fingerprint(keys.access_log_key)
    return found


def missing_or_different(needed: dict[str, str], present: dict[str, str]) -> list[str]:
    """The keys a backup needs that ``present`` lacks or holds with other bytes. Keys
    made after the backup (a rotation since) are extra, not a problem."""
    return sorted(name for name, print_ in needed.items() if present.get(name) != print_)
