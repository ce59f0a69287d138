"""Use case: audit the ledger (``ctplhub ledger audit``, DESIGN §6).

Recomputes every leaf from the stored events (the salts unsealed, the personal fields
decrypted, the entry rebuilt exactly as the write path built it), lines the recomputed
leaves up with the leaf hashes the store holds, checks every stored subtree hash against
its children, every signed tree head's signature and root, and the log's consistency
with a tree head saved earlier (``--since``). Each finding names the leaf index and the
event it concerns, or the stored hash or tree head, as exactly as the evidence allows.

Three streams, each read once in order (leaves joined with their events, the leaves'
stored hashes, events without a leaf), so memory stays flat however long the log; the
leaves' costly recomputation (``ledger_recompute``) may run in worker processes, range by
range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctplhub.ledger import (
    CompactRange,
    TreeHead,
    leaf_hash_count,
    stored_hash_home,
    stored_hash_index,
    stored_hash_leaves,
)
from ctplhub.services.ledger_entries import Canonicaliser
from ctplhub.services.ledger_findings import (
    Finding,
    FindingKind,
    LeafMismatch,
    RecomputedLeaf,
    StoredHashCheck,
    Subject,
    align_leaves,
)
from ctplhub.services.ledger_ports import LedgerAuditSource, VerifySigned
from ctplhub.services.ledger_proofs import SignedTreeHead
from ctplhub.services.ledger_recompute import (
    Flagged,
    LeafRecomputer,
    RecomputedRange,
    RecomputeRanges,
    leaf_ranges,
)
from ctplhub.services.ports import PersonalData

Progress = Callable[[int], None]  # called with the number of leaves just checked


@dataclass(frozen=True, slots=True)
class AuditReport:
    events: int
    leaves: int
    stored_hashes: int
    tree_heads: int
    root: bytes  # of the leaves recomputed from the events
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings


class LedgerAudit:
    def __init__(
        self,
        source: LedgerAuditSource,
        personal: PersonalData,
        canonicalise: Canonicaliser,
        verify: VerifySigned,
    ) -> None:
        self._source = source
        self._recomputer = LeafRecomputer(personal, canonicalise)
        self._verify = verify

    def _in_process(self, ranges: Sequence[tuple[int, int]]) -> Iterator[RecomputedRange]:
        for start, end in ranges:
            yield self._recomputer.recompute(self._source.leaves(start, end))

    def counts(self) -> tuple[int, int, int]:
        """(events, leaves, stored hashes) as stored now."""
        return self._source.counts()

    def latest_tree_head(self) -> SignedTreeHead | None:
        """The latest stored signed tree head: what ``--since`` compares with later."""
        return self._source.latest_tree_head()

    def run(
        self,
        since: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        *,
        recompute: RecomputeRanges | None = None,
    ) -> AuditReport:
        """Audit everything; ``recompute`` spreads the leaves' recomputation over worker
        processes (by default it runs here, range after range)."""
        findings: list[Finding] = []
        # The bound first: a leaf below it was committed with its tree head, so the heads
        # read next hold it. Heads past the bound are a live writer's (the log has grown
        # to them by now, and they are left to the next audit) or hold leaves now gone.
        bound = self._source.leaf_index_bound()
        heads = self._source.tree_heads()
        for head in heads:
            if not self._verify(head.published()):
                findings.append(_head_finding(head, "its signature does not verify"))
        latest_signed = heads[-1].head.tree_size if heads else 0
        if latest_signed > bound and self._source.leaf_index_bound() >= latest_signed:
            heads = [head for head in heads if head.head.tree_size <= bound]
        scope = max(bound, heads[-1].head.tree_size if heads else 0)
        since_head = self._since(since, findings)
        checkpoints = {head.head.tree_size for head in heads}
        if since_head is not None:
            checkpoints.add(since_head.tree_size)
        latest = heads[-1].head.tree_size if heads else 0
        flagged: dict[int, Flagged] = {}
        unsigned: dict[int, int] = {}  # leaf_index -> event_id, past the latest head
        roots: dict[int, bytes] = {0: CompactRange().root()}
        edge = CompactRange()
        ranges = leaf_ranges(bound)

        def recomputed() -> Iterator[RecomputedLeaf]:
            for part in (recompute or self._in_process)(ranges):
                flagged.update(part.flagged)
                findings.extend(part.findings)
                for value, leaf_index, event_id in part.leaves:
                    edge.extend((value,))
                    if edge.size in checkpoints:
                        roots[edge.size] = edge.root()
                    if leaf_index >= latest:
                        unsigned[leaf_index] = event_id
                    yield value, leaf_index, event_id
                if progress is not None:
                    progress(len(part.leaves))

        check = StoredHashCheck()
        stored = self._source.hashes(scope)
        mismatches = list(align_leaves(recomputed(), check.leaf_hashes(stored)))
        missing_events = list(self._source.events_without_leaf())
        findings += _leaf_findings(mismatches, flagged, missing_events, latest)
        findings += _stored_hash_findings(check, findings)
        leaves = edge.size
        findings += _tree_head_findings(heads, roots, leaves, unsigned, findings)
        if since_head is not None:
            findings += _since_findings(since_head, roots, leaves)
        events, _, _ = self._source.counts()
        return AuditReport(events, leaves, check.hashes, len(heads), edge.root(), tuple(findings))

    def _since(self, since: Mapping[str, Any] | None, findings: list[Finding]) -> TreeHead | None:
        if since is None:
            return None
        head = TreeHead.from_signable(since)  # ValueError: the file is no tree head
        if not self._verify(dict(since)):
            findings.append(
                Finding(
                    FindingKind.INCONSISTENT,
                    Subject.SINCE,
                    "the saved tree head's signature does not verify",
                    tree_size=head.tree_size,
                )
            )
        return head


def _leaf_findings(
    mismatches: list[LeafMismatch],
    flagged: dict[int, Flagged],
    missing_events: list[int],
    latest: int,
) -> list[Finding]:
    out: list[Finding] = []
    altered_positions = {m.leaf_index for m in mismatches if m.kind is FindingKind.ALTERED}
    inserted = {m.leaf_index for m in mismatches if m.kind is FindingKind.INSERTED}
    for leaf_index, flag in sorted(flagged.items()):
        if leaf_index in inserted:  # named below as what it is: a leaf nobody appended
            continue
        if leaf_index >= latest:  # no signed head holds it: its row brought its own hashes
            detail = f"leaf {leaf_index} is past the latest signed tree head (size {latest})"
            out.append(
                Finding(
                    FindingKind.INSERTED,
                    Subject.LEAF,
                    f"{detail}, and {flag.detail}",
                    leaf_index,
                    flag.event_id,
                )
            )
            continue
        if leaf_index in altered_positions:  # the tree holds neither: the event changed
            subject = Subject.EVENT if flag.rebuilt is not None else Subject.ENTRY
            detail = f"the event no longer gives the entry the tree holds; {flag.detail}"
        else:  # the tree holds the rebuilt entry's hash: the stored entry bytes changed
            subject = Subject.ENTRY
            detail = f"the stored entry is not the one the tree holds; {flag.detail}"
        out.append(Finding(FindingKind.ALTERED, subject, detail, leaf_index, flag.event_id))
    removed = [m for m in mismatches if m.kind is FindingKind.REMOVED]
    unpaired = iter(missing_events)
    for mismatch in mismatches:
        index = stored_hash_index(0, mismatch.position)
        if mismatch.kind is FindingKind.ALTERED and mismatch.leaf_index not in flagged:
            out.append(
                Finding(
                    FindingKind.ALTERED,
                    Subject.STORED_HASH,
                    f"the stored hash of leaf {mismatch.position} is not its entry's hash",
                    mismatch.leaf_index,
                    mismatch.event_id,
                    stored_index=index,
                )
            )
        elif mismatch.kind is FindingKind.INSERTED:
            out.append(
                Finding(
                    FindingKind.INSERTED,
                    Subject.LEAF,
                    f"leaf {mismatch.leaf_index} is not in the tree the stored hashes hold",
                    mismatch.leaf_index,
                    mismatch.event_id,
                )
            )
        elif mismatch.kind is FindingKind.REMOVED:
            event = next(unpaired, None) if len(removed) <= len(missing_events) else None
            out.append(
                Finding(
                    FindingKind.REMOVED,
                    Subject.LEAF,
                    f"the tree holds leaf {mismatch.position}, but no leaf row gives it",
                    mismatch.position,
                    event,
                    stored_index=index,
                )
            )
    paired = len(removed) if len(removed) <= len(missing_events) else 0
    for event_id in missing_events[paired:]:
        out.append(
            Finding(
                FindingKind.REMOVED, Subject.EVENT, f"event {event_id} has no leaf", None, event_id
            )
        )
    return out


def _explained(findings: list[Finding], leaves: range) -> bool:
    return any(f.leaf_index is not None and f.leaf_index in leaves for f in findings)


def _stored_hash_findings(check: StoredHashCheck, findings: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for index in check.bad:
        under = stored_hash_leaves(index)
        if not _explained(findings, under):
            out.append(
                Finding(
                    FindingKind.ALTERED,
                    Subject.STORED_HASH,
                    f"stored hash {index} ({_home(index)}; leaves {under.start}-"
                    f"{under.stop - 1}) is not the hash of its children",
                    stored_hash_home(index)[0],
                    stored_index=index,
                )
            )
    for index in check.missing:
        out.append(
            Finding(
                FindingKind.REMOVED,
                Subject.STORED_HASH,
                f"stored hash {index} ({_home(index)}) is missing",
                stored_hash_home(index)[0],
                stored_index=index,
            )
        )
    for leaf in check.overlong:
        out.append(
            Finding(
                FindingKind.ALTERED,
                Subject.STORED_HASH,
                f"the stored hashes of leaf {leaf} are longer than the "
                f"{leaf_hash_count(leaf)} its append wrote",
                leaf,
            )
        )
    return out


def _home(index: int) -> str:
    leaf, level = stored_hash_home(index)
    return f"level {level} of the hashes of leaf {leaf}"


def _head_finding(head: SignedTreeHead, why: str) -> Finding:
    return Finding(
        FindingKind.ALTERED,
        Subject.TREE_HEAD,
        f"the tree head of size {head.head.tree_size}: {why}",
        tree_size=head.head.tree_size,
    )


def _tree_head_findings(
    heads: list[SignedTreeHead],
    roots: dict[int, bytes],
    leaves: int,
    unsigned: dict[int, int],
    findings: list[Finding],
) -> list[Finding]:
    out: list[Finding] = []
    unsigned_heads = {f.tree_size for f in findings if f.subject is Subject.TREE_HEAD}
    for head in heads:
        size = head.head.tree_size
        root = roots.get(size)
        if (
            root is not None
            and root != head.head.root_hash
            and size not in unsigned_heads  # named already: its signature fails
            and not _explained(findings, range(size))
        ):
            out.append(_head_finding(head, "its root is not the root of the stored events"))
    latest = heads[-1].head.tree_size if heads else 0
    # Leaves the latest head holds that no leaf row gives, beyond those already named.
    named = sum(1 for f in findings if f.kind is FindingKind.REMOVED and f.subject is Subject.LEAF)
    gone = latest - leaves - named
    for leaf in range(latest - gone, latest) if gone > 0 else ():
        out.append(
            Finding(
                FindingKind.REMOVED,
                Subject.LEAF,
                f"the signed tree head of size {latest} holds leaf {leaf}, which is gone",
                leaf,
            )
        )
    for leaf_index in sorted(unsigned):
        if leaf_index >= latest and not _explained(
            findings + out, range(leaf_index, leaf_index + 1)
        ):
            out.append(
                Finding(
                    FindingKind.INSERTED,
                    Subject.LEAF,
                    f"leaf {leaf_index} is past the latest signed tree head (size {latest})",
                    leaf_index,
                    unsigned[leaf_index],
                )
            )
    return out


def _since_findings(since: TreeHead, roots: dict[int, bytes], leaves: int) -> list[Finding]:
    if since.tree_size > leaves:
        why = f"the saved tree head has {since.tree_size} leaves, the log only {leaves}"
    elif roots.get(since.tree_size) != since.root_hash:
        why = f"the log's first {since.tree_size} leaves do not have the saved root"
    else:
        return []
    return [Finding(FindingKind.INCONSISTENT, Subject.SINCE, why, tree_size=since.tree_size)]
