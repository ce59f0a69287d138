import base64
import json
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ctplhub.security.keystore import KeysMissing, ensure_keys, load_keys

FILES = [
    "pii-keys.json",
    "blind-index.key",
    "signing-keys.json",
    "access-log.key",
    "master-keys.json",
]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_keys_creates_everything_privately(tmp_path: Path) -> None:
    home = tmp_path / "var"
    assert sorted(ensure_keys(home)) == sorted(FILES)
    keys_dir = home / "keys"
    assert _mode(keys_dir) == 0o700
    for name in FILES:
        assert _mode(keys_dir / name) == 0o600
    assert sorted(p.name for p in keys_dir.iterdir()) == sorted(FILES)  # no temp files left


def test_file_formats(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    pii = json.loads((tmp_path / "keys" / "pii-keys.json").read_text())
    assert re.fullmatch(r"pii-\d{8}-[0-9a-f]{8}", pii["active"])
    assert len(base64.b64decode(pii["keys"][pii["active"]])) == 32
    sig = json.loads((tmp_path / "keys" / "signing-keys.json").read_text())
    assert re.fullmatch(r"sig-\d{8}-[0-9a-f]{8}", sig["active"])
    assert len(base64.b64decode(sig["keys"][sig["active"]])) == 32
    blind = (tmp_path / "keys" / "blind-index.key").read_text()
    assert len(base64.b64decode(blind.strip())) == 32


def test_load_keys_round_trip(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    keys = load_keys(tmp_path)
    assert len(keys.pii_keys[keys.active_pii_kid]) == 32
    assert len(keys.blind_index_key) == 32
    signer = keys.signing_keys[keys.active_signing_kid]
    assert isinstance(signer, Ed25519PrivateKey)
    signer.public_key().verify(signer.sign(b"x"), b"x")
    assert load_keys(tmp_path).pii_keys == keys.pii_keys


def test_ensure_keys_never_overwrites(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    keys_dir = tmp_path / "keys"
    before = {name: (keys_dir / name).read_bytes() for name in FILES}
    assert ensure_keys(tmp_path) == []
    (keys_dir / "blind-index.key").unlink()
    assert ensure_keys(tmp_path) == ["blind-index.key"]
    for name in ["pii-keys.json", "signing-keys.json"]:
        assert (keys_dir / name).read_bytes() == before[name]
    assert (keys_dir / "blind-index.key").read_bytes() != before["blind-index.key"]


def test_rotated_key_sets_load(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    path = tmp_path / "keys" / "pii-keys.json"
    document = json.loads(path.read_text())
    document["keys"]["pii-20300101-00000000"] = base64.b64encode(bytes(32)).decode()
    document["active"] = "pii-20300101-00000000"
    path.write_text(json.dumps(document))
    keys = load_keys(tmp_path)
    assert keys.active_pii_kid == "pii-20300101-00000000"
    assert len(keys.pii_keys) == 2


def test_missing_keys_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KeysMissing, match="ctplhub init"):
        load_keys(tmp_path)
    ensure_keys(tmp_path)
    (tmp_path / "keys" / "signing-keys.json").unlink()
    with pytest.raises(KeysMissing, match="ctplhub init"):
        load_keys(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "{}",
        '{"active": "a", "keys": {}}',
        '{"active": "a", "keys": {"a": "!!!"}}',
        '{"active": "a", "keys": {"a": "AAAA"}}',
        '{"active": "b", "keys": {"a": "' + base64.b64encode(bytes(32)).decode() + '"}}',
        "[]",
    ],
)
def test_malformed_key_file(tmp_path: Path, content: str) -> None:
    ensure_keys(tmp_path)
    (tmp_path / "keys" / "pii-keys.json").write_text(content)
    with pytest.raises(KeysMissing):
        load_keys(tmp_path)
