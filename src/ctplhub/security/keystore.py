"""The platform's secret keys, kept as files under CTPLHUB_HOME/keys.

Files, not the database: a stolen database dump must not carry the keys that decrypt its
personal data (DESIGN §5.3) or that sign its answers (§3.1). Each key set names an active
key id and keeps the retired ones, so keys rotate without downtime: new data uses the
active kid while old blobs and old signatures still name a key that is present.

`ensure_keys` only ever adds missing files; overwriting a key would make every blob
encrypted under it unreadable, so that is never done here.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

PII_KEYS_FILE = "pii-keys.json"
BLIND_INDEX_FILE = "blind-index.key"
SIGNING_KEYS_FILE = "signing-keys.json"
# Master keys wrap the envelope data keys kept in the database (security/envelope.py).
# Optional when loading: a home made before envelope keys runs on pii-keys.json alone
# until `ctplhub init` adds this file (docs/DECISIONS.md, "Key rotation").
MASTER_KEYS_FILE = "master-keys.json"
# The access log's vehicle index (security/access_log.py): a key of its own, never rotated,
# so that an owner's listing still finds the entries of past years.
ACCESS_LOG_KEY_FILE = "access-log.key"
_KEY_LEN = 32


class KeysMissing(Exception):
    """The key files are absent or unreadable: the platform cannot start without them."""


@dataclass(frozen=True)
class Keys:
    pii_keys: dict[str, bytes]
    active_pii_kid: str
    blind_index_key: bytes
    signing_keys: dict[str, Ed25519PrivateKey]
    active_signing_kid: str
    access_log_key: bytes
    master_keys: dict[str, bytes] = field(default_factory=dict)
    active_master_kid: str | None = None


def new_kid(prefix: str) -> str:
    """A key id such as "sig-20261125-1a2b3c4d": sortable by date, unique by the suffix."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def ensure_keys(home: Path) -> list[str]:
    """Create home/keys and any missing key file; return the names of files created."""
    keys_dir = home / "keys"
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)  # mkdir's mode is masked by the umask
    created: list[str] = []
    if _write_new(keys_dir / PII_KEYS_FILE, _key_set("pii", secrets.token_bytes(_KEY_LEN))):
        created.append(PII_KEYS_FILE)
    blind_index = base64.b64encode(secrets.token_bytes(_KEY_LEN)) + b"\n"
    if _write_new(keys_dir / BLIND_INDEX_FILE, blind_index):
        created.append(BLIND_INDEX_FILE)
    signing = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    if _write_new(keys_dir / SIGNING_KEYS_FILE, _key_set("sig", signing)):
        created.append(SIGNING_KEYS_FILE)
    access_log = base64.b64encode(secrets.token_bytes(_KEY_LEN)) + b"\n"
    if _write_new(keys_dir / ACCESS_LOG_KEY_FILE, access_log):
        created.append(ACCESS_LOG_KEY_FILE)
    if _write_new(keys_dir / MASTER_KEYS_FILE, _key_set("mk", secrets.token_bytes(_KEY_LEN))):
        created.append(MASTER_KEYS_FILE)
    return created


def add_master_key(home: Path) -> str:
    """A new active master key, the older ones kept (data keys wrapped by them must stay
    readable until re-wrapped); returns its kid. The file is replaced atomically."""
    return _add_active_key(home / "keys" / MASTER_KEYS_FILE, "mk", secrets.token_bytes(_KEY_LEN))


def add_signing_key(home: Path) -> tuple[str, str]:
    """A new active Ed25519 signing key (``ctplhub keys rotate-signing``), the older ones
    kept so that the JWKS still publishes them and old signatures still verify by kid;
    returns (new kid, previous active kid). A running server signs with the key it loaded
    at start until it is restarted (docs/DECISIONS.md, "Signing-key rotation")."""
    path = home / "keys" / SIGNING_KEYS_FILE
    previous, _ = _read_key_set(path)
    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return _add_active_key(path, "sig", seed), previous


def _add_active_key(path: Path, prefix: str, key: bytes) -> str:
    """Add ``key`` to the key set at ``path`` as its active key; the file is replaced
    atomically (a reader sees the old set or the new one, never half a file)."""
    _, keys = _read_key_set(path)
    kid = new_kid(prefix)
    keys[kid] = key
    document = {
        "active": kid,
        "keys": {k: base64.b64encode(v).decode("ascii") for k, v in keys.items()},
    }
    content = (json.dumps(document, indent=2) + "\n").encode("ascii")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return kid


class PublishedSigningKeys:
    """The public signing keys in CTPLHUB_HOME/keys now, reread when the file changes (a
    ``stat`` a call): what a running server publishes and checks certificates against,
    so a rotation is known to every process before any of them signs with the new key.
    A file that cannot be read keeps the last keys read (never fewer than at start)."""

    def __init__(self, home: Path) -> None:
        self._path = home / "keys" / SIGNING_KEYS_FILE
        self._stamp: int | None = None
        self._keys: dict[str, Ed25519PublicKey] = {}

    def __call__(self) -> dict[str, Ed25519PublicKey]:
        try:
            stamp = self._path.stat().st_mtime_ns
        except OSError:
            return self._keys
        if stamp != self._stamp:
            try:
                _, raw = _read_key_set(self._path)
                self._keys = {
                    kid: Ed25519PrivateKey.from_private_bytes(seed).public_key()
                    for kid, seed in raw.items()
                }
            except (KeysMissing, ValueError):
                return self._keys
            self._stamp = stamp
        return self._keys


def load_keys(home: Path) -> Keys:
    """Read every key; raise KeysMissing with the fix when any file is absent or broken."""
    keys_dir = home / "keys"
    pii_active, pii_raw = _read_key_set(keys_dir / PII_KEYS_FILE)
    sig_active, sig_raw = _read_key_set(keys_dir / SIGNING_KEYS_FILE)
    blind_index_key = _b64_key(_read(keys_dir / BLIND_INDEX_FILE).strip(), BLIND_INDEX_FILE)
    try:
        signing_keys = {
            kid: Ed25519PrivateKey.from_private_bytes(raw) for kid, raw in sig_raw.items()
        }
    except ValueError as exc:
        raise KeysMissing(f"{SIGNING_KEYS_FILE}: invalid Ed25519 key ({exc})") from exc
    master_active: str | None = None
    master_raw: dict[str, bytes] = {}
    if (keys_dir / MASTER_KEYS_FILE).exists():
        master_active, master_raw = _read_key_set(keys_dir / MASTER_KEYS_FILE)
    return Keys(
        pii_keys=pii_raw,
        active_pii_kid=pii_active,
        blind_index_key=blind_index_key,
        signing_keys=signing_keys,
        active_signing_kid=sig_active,
        access_log_key=_b64_key(_read(keys_dir / ACCESS_LOG_KEY_FILE).strip(), "access-log.key"),
        master_keys=master_raw,
        active_master_kid=master_active,
    )


def _key_set(prefix: str, key: bytes) -> bytes:
    kid = new_kid(prefix)
    document = {"active": kid, "keys": {kid: base64.b64encode(key).decode("ascii")}}
    return (json.dumps(document, indent=2) + "\n").encode("ascii")


def _write_new(path: Path, content: bytes) -> bool:
    # Written in full to a private temporary file, then hard-linked into place: link()
    # fails if the name exists, so a key is never overwritten (not even by a concurrent
    # `ctplhub init`), and a crash never leaves an empty key file behind.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp_name)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeysMissing(f"key file {path} is missing: run `ctplhub init` to create it") from None


def _read_key_set(path: Path) -> tuple[str, dict[str, bytes]]:
    try:
        document: Any = json.loads(_read(path))
        active = document["active"]
        keys = {str(kid): _b64_key(value, path.name) for kid, value in document["keys"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeysMissing(f"key file {path} is malformed ({exc})") from exc
    if not isinstance(active, str) or active not in keys:
        raise KeysMissing(f"key file {path}: active kid {active!r} is not among its keys")
    return active, keys


def _b64_key(value: str | bytes, name: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (ValueError, TypeError) as exc:
        raise KeysMissing(f"{name}: key is not valid base64") from exc
    if len(key) != _KEY_LEN:
        raise KeysMissing(f"{name}: key must be {_KEY_LEN} bytes, got {len(key)}")
    return key
