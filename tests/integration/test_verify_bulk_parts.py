"""A bulk verify reads its vehicles in parts (the first a quarter of a chunk, then half,
then chunks): whatever part an item's key falls in, asked once or again later, by plate or
by VIN, rejected or not, it gets the answer it gets when asked alone, in its place, and
each vehicle read is logged once."""

from __future__ import annotations

from typing import Any

from ctplhub.bootstrap import Container
from ctplhub.domain.identifiers import with_vin_check_digit
from ctplhub.services.ports import Reader
from ctplhub.services.verify_bulk import RejectedItem, VerifiedItem
from helpers import event, run_reads

POLICE = Reader("officer-001", "police", "bulk_verify", "req-parts")
ALONE = Reader("officer-001", "police", "bulk_verify", "req-alone")
AT = "2025-09-01T00:00:00+08:00"
_HEAD = 250  # a quarter of the readers' chunk: 750 items are read in three parts


def _vin(n: int) -> str:
    return with_vin_check_digit(f"LSVAU2180N{n:07d}")


def _shape(result: Any) -> tuple[Any, ...]:
    if isinstance(result, RejectedItem):
        return ("rejected", result.key, result.given, result.error.code)
    assert isinstance(result, VerifiedItem)
    return (result.plate, result.vin, result.status, result.insurer_code, result.covered_until)


async def _one_by_one(container: Container, items: list[Any]) -> list[Any]:
    return [(await container.verify.verify([item], reader=ALONE))[0] for item in items]


def test_items_in_every_part_answer_as_alone(container: Container) -> None:
    container.insurers.add("PICC", "中国人民财产保险", actor="test")
    for n in range(12):  # twelve insured vehicles; the plates of the others have no record
        container.report_events.report(
            event(policy_no=f"P-PARTS-{n}", vin=_vin(n), plate=f"苏E{n:05d}"),
            insurer_code="PICC",
        )
    items: list[Any] = [{"plate": f"苏E{n:05d}", "at": AT} for n in range(_HEAD * 3)]
    items[5] = {"plate": "X"}  # rejected, early
    items[_HEAD + 7] = {"plate": "苏E00003", "at": AT}  # asked again, later
    items[_HEAD + 8] = {"plate": "苏e00011", "at": AT}  # again, in another spelling
    items[_HEAD * 2] = {"vin": _vin(4), "at": AT}  # by VIN, later
    items[3] = {"vin": _vin(9), "at": AT}  # by VIN, early
    items[-1] = {"vin": "bad"}  # rejected, last

    results = run_reads(container, lambda: container.verify.verify(items, reader=POLICE))
    # The first items, the repeats, a VIN and the last two, each asked alone.
    places = [*range(_HEAD + 10), _HEAD * 2, len(items) - 2, len(items) - 1]
    alone = run_reads(container, lambda: _one_by_one(container, [items[i] for i in places]))
    answered = [results[i] for i in places]
    assert len(results) == len(items)
    assert [_shape(r) for r in answered] == [_shape(r) for r in alone]
    covered = [r for r in results if isinstance(r, VerifiedItem) and r.covered]
    # 苏E00000..苏E00011 but 3 and 5 (their slots ask a VIN and "X"), 3 and 11 asked
    # again later, and the two VINs.
    assert len(covered) == 10 + 2 + 2
    assert [r.vin.value for r in (results[3], results[_HEAD * 2])] == [_vin(9), _vin(4)]

    assert container.access_log.flush_now()
    logged = container.engine.dialect.name  # the entries: one per vehicle read by the call
    with container.engine.connect() as conn:
        table = "audit.access_log" if logged == "sqlite" else "access_log"
        entries = conn.exec_driver_sql(
            f"SELECT count(*), count(DISTINCT vehicle_key) FROM {table} "
            "WHERE request_id = 'req-parts'"
        ).one()
    assert entries[0] == entries[1] == 11  # all but 苏E00005, whose slot asks "X"
