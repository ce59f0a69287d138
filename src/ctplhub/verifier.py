"""Check CTPL Hub's ledger from the outside, with nothing but its public endpoints
(DESIGN §6): what an insurer, a court or a journalist runs to hold the registry to what
it signed. It trusts only the published keys (``/.well-known/ctplhub-keys.json``) and
the RFC 9162 arithmetic of ``ctplhub.ledger`` (standard library only); it depends on
httpx, cryptography and rfc8785, never on the server's code.

- ``tree_head``: the latest tree head, its Ed25519 signature checked by the rule of §3.1
  (base64 signature over the JCS of the object without ``signature``, key by ``kid``);
- ``verify_receipt``: a ``201``'s receipt: its tree head signed, its leaf in that tree;
- ``verify_leaf``: a leaf known by index only (a batch line): its entry and proof fetched;
- ``follow``: keeps the last verified tree head in a state file and proves each new one
  extends it, so a log that was rewritten, forked or shrunk is caught;
- ``commitment_matches``: an entry's committed field against a value and its salt.

    python -m ctplhub.verifier --url https://ctplhub.example follow --state head.json

Exit status: 0 verified, 1 a check failed (the message says which), 2 could not check.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ctplhub.ledger import (
    ProofRejected,
    TreeHead,
    commitment,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "LedgerVerifier",
    "VerificationFailed",
    "commitment_matches",
    "parse_jwks",
    "verify_signed_tree_head",
]

KEYS_PATH = "/.well-known/ctplhub-keys.json"


class VerificationFailed(Exception):
    """The registry answered something that does not hold: a bad signature, a proof that
    leads elsewhere, a log that does not extend what it signed before."""


def parse_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS (RFC 8037 ``OKP``) by ``kid``; other keys are ignored."""
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in document.get("keys", ()):
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and "kid" in jwk:
            raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def verify_signed_tree_head(
    signed: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]
) -> TreeHead:
    """The tree head, once its signature holds under the key its ``kid`` names."""
    signature = signed.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        raise VerificationFailed("the tree head carries no Ed25519 signature")
    key = keys.get(str(signature.get("kid")))
    if key is None:
        raise VerificationFailed(f"the tree head is signed by unknown key {signature.get('kid')}")
    unsigned = {name: value for name, value in signed.items() if name != "signature"}
    try:
        key.verify(base64.b64decode(str(signature.get("value")), validate=True), _jcs(unsigned))
        head = TreeHead.from_signable(unsigned)
    except (InvalidSignature, ValueError) as error:
        raise VerificationFailed(f"the tree head's signature does not hold: {error}") from None
    if set(unsigned) != {"tree_size", "root_hash", "timestamp"}:
        raise VerificationFailed(f"the tree head has unexpected fields {sorted(unsigned)}")
    return head


def commitment_matches(entry: Mapping[str, Any], field: str, value: str, salt_hex: str) -> bool:
    """Whether the entry's committed ``field`` is ``value`` under the salt of the receipt."""
    return entry.get(field) == commitment(bytes.fromhex(salt_hex), value)


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes:
    """SHA-256(0x00 || JCS(entry)): the leaf hash an entry must have."""
    return leaf_hash(_jcs(dict(entry)))


@dataclass(frozen=True, slots=True)
class FollowResult:
    previous: TreeHead | None
    current: TreeHead


class LedgerVerifier:
    """The checks against one registry; keys are fetched once, and again on an unknown
    ``kid`` (a rotated signing key)."""

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 30
    ) -> None:
        self._http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)
        self._keys: dict[str, Ed25519PublicKey] = {}

    def close(self) -> None:
        self._http.close()

    def keys(self, *, refresh: bool = False) -> dict[str, Ed25519PublicKey]:
        if refresh or not self._keys:
            self._keys = parse_jwks(self._get(KEYS_PATH))
        return self._keys

    def verify_head(self, signed: Mapping[str, Any]) -> TreeHead:
        signature = signed.get("signature")
        kid = signature.get("kid") if isinstance(signature, Mapping) else None
        keys = self.keys()
        if kid not in keys:
            keys = self.keys(refresh=True)
        return verify_signed_tree_head(signed, keys)

    def tree_head(self) -> tuple[TreeHead, dict[str, Any]]:
        """The latest tree head, verified, and as served (to keep as evidence)."""
        signed = self._get("/v1/ledger/tree-head")
        return self.verify_head(signed), signed

    def verify_receipt(self, receipt: Mapping[str, Any]) -> TreeHead:
        """A receipt of a ``201`` (or the whole answer that carries it)."""
        receipt = receipt.get("receipt", receipt)
        head = self.verify_head(receipt["tree_head"])
        leaf = _hex(receipt["leaf_hash"], "leaf_hash")
        path = [_hex(value, "inclusion_proof") for value in receipt["inclusion_proof"]]
        _proves(verify_inclusion, receipt["leaf_index"], head.tree_size, leaf, path, head.root_hash)
        return head

    def entry(self, leaf_index: int) -> tuple[dict[str, Any], bytes]:
        """One entry and its leaf hash, refused unless the two agree."""
        found = self._get("/v1/ledger/entries", start=leaf_index, end=leaf_index + 1)["entries"]
        if len(found) != 1 or found[0]["leaf_index"] != leaf_index:
            raise VerificationFailed(f"leaf {leaf_index} is not in the log")
        entry, published = found[0]["entry"], _hex(found[0]["leaf_hash"], "leaf_hash")
        if entry_leaf_hash(entry) != published:
            raise VerificationFailed(f"leaf {leaf_index}: the entry does not hash to its leaf")
        return entry, published

    def verify_batch(self, answer: Mapping[str, Any]) -> int:
        """A batch answer: its tree head signed, each accepted line's leaf proven in it
        (proofs fetched from the inclusion endpoint). Returns how many were proven."""
        lines = [r["receipt"] for r in answer["results"] if r.get("receipt") is not None]
        if not lines:
            return 0
        head = self.verify_head(answer["tree_head"])
        for line in lines:
            leaf = _hex(line["leaf_hash"], "leaf_hash")
            self.prove_leaf(line["leaf_index"], leaf, head)
        return len(lines)

    def verify_leaf(self, leaf_index: int, head: TreeHead | None = None) -> dict[str, Any]:
        """A leaf known by index alone: its entry (checked against its leaf hash), proven
        in ``head`` (the latest verified tree head when not given). Returns the entry."""
        if head is None:
            head, _ = self.tree_head()
        entry, leaf = self.entry(leaf_index)
        self.prove_leaf(leaf_index, leaf, head)
        return entry

    def prove_leaf(self, leaf_index: int, leaf: bytes, head: TreeHead) -> None:
        """Fetch the audit path of the leaf in ``head``'s tree and check it."""
        proof = self._get(
            "/v1/ledger/proof/inclusion", leaf_index=leaf_index, tree_size=head.tree_size
        )
        path = [_hex(value, "audit_path") for value in proof["audit_path"]]
        _proves(verify_inclusion, leaf_index, head.tree_size, leaf, path, head.root_hash)

    def follow(self, state: Path) -> FollowResult:
        """Prove the latest tree head extends the one in ``state``, then keep the new one
        there. Nothing is written when a check fails: the old head stays as evidence."""
        current, signed = self.tree_head()
        previous = _load_state(state)
        if previous is not None:
            self.check_extends(previous, current)
        tmp = state.with_name(state.name + ".tmp")
        tmp.write_text(json.dumps(signed, indent=2) + "\n", encoding="utf-8")
        tmp.replace(state)
        return FollowResult(previous, current)

    def check_extends(self, old: TreeHead, new: TreeHead) -> None:
        if new.tree_size < old.tree_size:
            raise VerificationFailed(
                f"the log shrank: {old.tree_size} leaves signed before, {new.tree_size} now"
            )
        if old.tree_size == 0:
            return  # the empty tree is a prefix of every tree
        if new.tree_size == old.tree_size:
            if new.root_hash != old.root_hash:
                raise VerificationFailed(f"two different roots signed for size {new.tree_size}")
            return
        proof = self._get("/v1/ledger/proof/consistency", first=old.tree_size, second=new.tree_size)
        path = [_hex(value, "consistency_path") for value in proof["consistency_path"]]
        _proves(
            verify_consistency, old.tree_size, new.tree_size, old.root_hash, new.root_hash, path
        )

    def _get(self, path: str, **params: int) -> dict[str, Any]:
        response = self._http.get(path, params=params)
        if response.status_code != 200:
            raise VerificationFailed(f"GET {path} answered {response.status_code}: {response.text}")
        body = response.json()
        if not isinstance(body, dict):
            raise VerificationFailed(f"GET {path} did not answer a JSON object")
        return body


def _proves(check: Any, *args: Any) -> None:
    try:
        check(*args)
    except ProofRejected as error:
        raise VerificationFailed(f"the proof does not hold: {error.reason}") from None


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise VerificationFailed(f"{what} is not a 64-character hex hash")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise VerificationFailed(f"{what} is not hex") from None


def _jcs(obj: dict[str, Any]) -> bytes:
    encoded: bytes = rfc8785.dumps(obj)
    return encoded


def _load_state(state: Path) -> TreeHead | None:
    if not state.exists():
        return None
    return TreeHead.from_signable(json.loads(state.read_text(encoding="utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ctplhub.verifier", description=__doc__)
    parser.add_argument("--url", required=True, help="the registry's base URL")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tree-head", help="fetch and verify the latest tree head")
    receipt = commands.add_parser(
        "receipt", help="verify the receipts of a 201 or of a batch answer (a JSON file)"
    )
    receipt.add_argument("file", type=Path)
    leaf = commands.add_parser("leaf", help="verify a leaf by index in the latest tree head")
    leaf.add_argument("leaf_index", type=int)
    follow = commands.add_parser("follow", help="prove the log extends the saved tree head")
    follow.add_argument("--state", type=Path, required=True)
    opened = commands.add_parser("commitment", help="check an entry's field against a value")
    opened.add_argument("leaf_index", type=int)
    opened.add_argument("field")
    opened.add_argument("value")
    opened.add_argument("salt", help="the field's salt from the receipt (hex)")
    args = parser.parse_args(argv)
    verifier = LedgerVerifier(args.url)
    try:
        print(json.dumps(_run(verifier, args), ensure_ascii=False))
    except VerificationFailed as error:
        print(f"verification failed: {error}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
        print(f"could not check: {error}", file=sys.stderr)
        return 2
    finally:
        verifier.close()
    return 0


def _run(verifier: LedgerVerifier, args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "tree-head":
        return {"verified": True, "tree_head": verifier.tree_head()[1]}
    if args.command == "receipt":
        answer = json.loads(args.file.read_text(encoding="utf-8"))
        if "results" in answer:
            return {"verified": True, "leaves": verifier.verify_batch(answer)}
        return {"verified": True, "tree_size": verifier.verify_receipt(answer).tree_size}
    if args.command == "leaf":
        return {"verified": True, "entry": verifier.verify_leaf(args.leaf_index)}
    if args.command == "follow":
        result = verifier.follow(args.state)
        before = result.previous.tree_size if result.previous else None
        return {"verified": True, "from": before, "to": result.current.tree_size}
    entry = verifier.verify_leaf(args.leaf_index)
    if not commitment_matches(entry, args.field, args.value, args.salt):
        raise VerificationFailed(f"leaf {args.leaf_index}'s {args.field} is not that value")
    return {"verified": True, "field": args.field}


if __name__ == "__main__":
    sys.exit(main())
