"""Signing a ledger tree head (DESIGN §6) by the rule of §3.1: the head each appending
transaction stores, and the empty log's head, which is never stored."""

from __future__ import annotations

import base64

from ctplhub.ledger import TreeHead
from ctplhub.security.answer_signing import AnswerSigner
from ctplhub.services.ledger_proofs import SignedTreeHead, SignTreeHead


def tree_head_signer(signer: AnswerSigner) -> SignTreeHead:
    """A ``SignTreeHead`` over the active key: JCS of ``{"tree_size", "root_hash",
    "timestamp"}``, signed; the kid and the raw signature kept as the table keeps them."""

    def sign(head: TreeHead) -> SignedTreeHead:
        signature = signer.sign(dict(head.to_signable()))["signature"]
        return SignedTreeHead(head, signature["kid"], base64.b64decode(signature["value"]))

    return sign
