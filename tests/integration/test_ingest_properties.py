"""Properties of the whole accepted path (parse → version rules → store → coverage), on
both databases: arrival order never changes the answer, and re-sending changes nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctplhub.bootstrap import Container
from ctplhub.domain.errors import DomainError
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.services.ports import Reader
from ctplhub.services.verify_bulk import VerifiedItem
from helpers import event, run_reads

BASE = datetime(2024, 1, 1, tzinfo=UTC)
PROBES = [BASE + timedelta(days=d) for d in (-10, 0, 100, 365, 500, 730, 900, 1200)]
_serial = itertools.count(1)


def _vin(n: int) -> str:
    return with_vin_check_digit(f"LSVAU2180N{n:07d}")


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A history of one vehicle: 1-3 policies, each with 1-3 versions. After a surrender
    or cancel a policy may have one more version, which the registry refuses when it
    arrives after the cancel and keeps as history when it arrives before (§2.4)."""
    policies = []
    for index in range(draw(st.integers(1, 3))):
        insurer = draw(st.sampled_from(["PICC", "PINGAN"]))
        start = draw(st.integers(0, 900))
        length = draw(st.sampled_from([365, 365, 200, 30]))
        versions = []
        for version in range(1, draw(st.integers(1, 3)) + 1):
            kind = (
                "issue" if version == 1 else draw(st.sampled_from(["endorse", "endorse", "final"]))
            )
            if kind == "final":
                kind = draw(st.sampled_from(["surrender", "cancel"]))
            end = start + length + (draw(st.integers(-20, 20)) if kind == "endorse" else 0)
            versions.append((version, kind, start, max(end, start + 1), index))
            if kind in ("surrender", "cancel"):
                if draw(st.booleans()):  # an endorse written before the insurer saw the cancel
                    versions.append((version + 1, "endorse", start, start + length + 30, index))
                break
        policies.append((insurer, versions))
    return [
        {
            "insurer": insurer,
            "version": version,
            "kind": kind,
            "start": start,
            "end": end,
            "index": index,
        }
        for insurer, versions in policies
        for version, kind, start, end, index in versions
    ]


def _events(history: list[dict[str, Any]], vin: str, tag: str) -> list[dict[str, Any]]:
    out = []
    for h in history:
        start = BASE + timedelta(days=h["start"])
        fields: dict[str, Any] = {}
        if h["kind"] == "surrender":
            fields["effective_at"] = (start + timedelta(days=10)).isoformat()
        out.append(
            event(
                insurer_code=h["insurer"],
                policy_no=f"P{tag}-{h['index']}",
                event_type=h["kind"],
                version=h["version"],
                vin=vin,
                plate=f"苏E{int(tag) % 100000:05d}",
                occurred_at=(start - timedelta(days=5, hours=h["version"])).isoformat(),
                coverage_start=start.isoformat(),
                coverage_end=(BASE + timedelta(days=h["end"])).isoformat(),
                **fields,
            )
        )
    return out


def _ingest(container: Container, events: list[dict[str, Any]]) -> None:
    for raw in events:
        try:
            container.report_events.report(raw, insurer_code=raw["insurer_code"])
        except DomainError as error:
            if error.code != "policy_closed":  # pragma: no cover - nothing else may fail
                raise AssertionError(f"event refused: {error.code} {error.message}") from error


def _answers(container: Container, vin: str) -> list[tuple[Any, ...]]:
    items = [{"vin": vin, "at": t.isoformat()} for t in PROBES]
    results = run_reads(
        container, lambda: container.verify.verify(items, reader=Reader("test", "police", "test"))
    )
    return [
        (r.status, r.covered, r.insurer_code, r.covered_until)
        for r in results
        if isinstance(r, VerifiedItem)
    ]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories(), data=st.data())
def test_arrival_order_and_resends_never_change_the_answer(
    container: Container, make_insurer: Any, history: list[dict[str, Any]], data: st.DataObject
) -> None:
    registered = {record.code for record in container.insurers.list()}
    for code in ("PICC", "PINGAN"):
        if code not in registered:
            make_insurer(code)
    in_order_vin, shuffled_vin = _vin(next(_serial)), _vin(next(_serial))
    tag_a, tag_b = f"{next(_serial):05d}", f"{next(_serial):05d}"
    _ingest(container, _events(history, in_order_vin, tag_a))
    shuffled = data.draw(st.permutations(_events(history, shuffled_vin, tag_b)))
    resent = data.draw(st.lists(st.sampled_from(shuffled), max_size=3))
    _ingest(container, [*shuffled, *resent])
    assert _answers(container, shuffled_vin) == _answers(container, in_order_vin)
