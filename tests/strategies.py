"""Hypothesis strategies for data that looks real: it gets past the first check and
reaches the code behind it (DESIGN §2). Plain schema-driven fuzzing sends random strings
for a plate, which the parser refuses at once; these send plates that parse, VINs with
their check digit, ID numbers with theirs, instants all over their allowed range and
just outside it, and policy events built from them, plus a share of near-misses.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from ctplhub.domain.identifiers import (
    DIGITS,
    ISSUER_LETTERS,
    NEW_ENERGY_LARGE_LAST,
    NEW_ENERGY_SMALL_FIRST,
    ORDINARY_SUFFIXES,
    PROVINCES,
    SERIAL_CHARS,
    USCC_CHARS,
    VIN_CHARS,
    resident_id_check_char,
    uscc_check_char,
    with_vin_check_digit,
)
from ctplhub.domain.instants import BEIJING, EARLIEST, END_OF_RANGE
from helpers import event

_SERIAL = st.sampled_from(SERIAL_CHARS)
_DIGIT = st.sampled_from(DIGITS)


def _chars(alphabet: st.SearchStrategy[str], n: int) -> st.SearchStrategy[str]:
    return st.lists(alphabet, min_size=n, max_size=n).map("".join)


@st.composite
def compact_plates(draw: st.DrawFn) -> str:
    """A valid plate in canonical compact form: ordinary or new-energy (§2.1)."""
    head = draw(st.sampled_from(PROVINCES)) + draw(st.sampled_from(ISSUER_LETTERS))
    kind = draw(st.sampled_from(["ordinary", "ordinary", "suffix", "small", "large"]))
    if kind == "ordinary":
        return head + draw(_chars(_SERIAL, 5))
    if kind == "suffix":
        return head + draw(_chars(_SERIAL, 4)) + draw(st.sampled_from(ORDINARY_SUFFIXES))
    if kind == "small":
        first = draw(st.sampled_from(NEW_ENERGY_SMALL_FIRST))
        return head + first + draw(_SERIAL) + draw(_chars(_DIGIT, 4))
    return head + draw(_chars(_DIGIT, 5)) + draw(st.sampled_from(NEW_ENERGY_LARGE_LAST))


def written(compact: str) -> st.SearchStrategy[str]:
    """A plate as people type it: display form, lower case, spaces, full-width letters."""
    return st.sampled_from(
        [
            compact,
            f"{compact[:2]}·{compact[2:]}",
            compact.lower(),
            f"{compact[:2]} {compact[2:]}",
            f"{compact[:2]}-{compact[2:]}",
            compact.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}),  # full-width
        ]
    )


def plates() -> st.SearchStrategy[str]:
    return compact_plates().flatmap(written)


def near_miss_plates() -> st.SearchStrategy[str]:
    """Plates one rule away from valid: I in the serial, no province, embassy, a length
    no plate has, empty."""
    return compact_plates().flatmap(
        lambda p: st.sampled_from([p[:2] + "I" + p[3:], p[2:], "使" + p[1:], p[:5], p + "12", ""])
    )


@st.composite
def vins(draw: st.DrawFn) -> str:
    """A 17-character VIN with its correct check digit (§2.2)."""
    return with_vin_check_digit(draw(_chars(st.sampled_from(VIN_CHARS), 17)))


def wrong_check_vins() -> st.SearchStrategy[str]:
    return vins().map(lambda v: v[:8] + ("X" if v[8] != "X" else "0") + v[9:])


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """A GB 11643 resident ID: region, a real birth date, sequence, check character."""
    region = draw(st.sampled_from(["110105", "320506", "440305", "510107", "650102"]))
    born = draw(st.dates(date(1900, 1, 1), date(2020, 12, 31)))
    first17 = f"{region}{born:%Y%m%d}{draw(_chars(_DIGIT, 3))}"
    return first17 + resident_id_check_char(first17)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """A GB 32100 unified social credit code with its check character."""
    first17 = draw(_chars(st.sampled_from(USCC_CHARS), 17))
    return first17 + uscc_check_char(first17)


_FIRST = EARLIEST.astimezone(UTC)
_LAST = (END_OF_RANGE - timedelta(microseconds=1)).astimezone(UTC)


def _offsets() -> st.SearchStrategy[timezone]:
    minutes = st.sampled_from([480, 0, -60, 840, -720, 330, 23 * 60 + 59, -(23 * 60 + 59)])
    return minutes.map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def instants_in_range(draw: st.DrawFn) -> datetime:
    """An aware instant in [2000-01-01, 2100-01-01) Beijing time, often near a bound."""
    near = st.integers(0, 3 * 86_400)
    instant = draw(
        st.one_of(
            st.datetimes(_FIRST.replace(tzinfo=None), _LAST.replace(tzinfo=None)).map(
                lambda d: d.replace(tzinfo=UTC)
            ),
            near.map(lambda s: _FIRST + timedelta(seconds=s)),
            near.map(lambda s: _LAST - timedelta(seconds=s)),
        )
    )
    return instant.astimezone(draw(_offsets()))


def rfc3339(value: datetime) -> st.SearchStrategy[str]:
    text = value.isoformat()
    return st.sampled_from([text, value.isoformat(timespec="seconds"), text.replace("+00:00", "Z")])


def instants() -> st.SearchStrategy[str]:
    """RFC 3339 instants: mostly inside the allowed range (§2.5), some just outside it,
    at the ends of Python's calendar, or without an offset."""
    outside = st.sampled_from(
        [
            "9999-12-31T23:00:00-01:00",
            "9999-12-31T23:59:59.999999+00:00",
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00-23:59",
            "1999-12-31T23:59:59+08:00",
            "1999-12-31T15:59:59Z",
            "2100-01-01T00:00:00+08:00",
            "2099-12-31T16:00:00Z",
            "2099-12-31T23:59:59.999999+08:00",
            "2000-01-01T00:00:00+08:00",
            "2026-03-01T00:00:00",
            "2026-03-01",
        ]
    )
    inside = instants_in_range().flatmap(rfc3339)
    return st.one_of(inside, inside, inside, outside)


def beijing(value: datetime) -> str:
    return value.astimezone(BEIJING).isoformat()


@st.composite
def policy_events(
    draw: st.DrawFn, insurer_code: str = "PICC", *, near_misses: bool = True
) -> dict[str, Any]:
    """A valid policy event (§2.4) built on ``helpers.event``, every field drawn; with
    ``near_misses``, one in three has one field a rule away from valid, so each rule is
    reached on its own."""
    # The bounds themselves are near misses below; a valid start leaves room for a year.
    start = min(draw(instants_in_range()), END_OF_RANGE - timedelta(days=400))
    end = start + timedelta(days=draw(st.sampled_from([365, 366, 30, 1])))
    id_type, id_number = draw(
        st.one_of(
            st.tuples(st.just("resident_id"), resident_ids()),
            st.tuples(st.just("uscc"), usccs()),
            st.tuples(st.just("other"), st.from_regex(r"[A-Z]{1,2}[0-9]{7,9}", fullmatch=True)),
        )
    )
    kind = draw(st.sampled_from(["issue", "issue", "renew", "endorse", "surrender", "cancel"]))
    occurred = start - timedelta(days=draw(st.integers(0, 30)))
    fields: dict[str, Any] = {
        "insurer_code": insurer_code,
        "policy_no": draw(st.from_regex(r"PDAA20[0-9]{2}[0-9]{8,14}", fullmatch=True)),
        "event_type": kind,
        "version": draw(st.integers(1, 5)),
        "occurred_at": beijing(max(occurred, EARLIEST)),
        "plate": draw(plates()),
        "vin": draw(vins()),
        "vehicle_type": draw(st.sampled_from(["passenger_small", "truck", "motorcycle"])),
        "use_nature": draw(st.sampled_from(["family", "non_operating", "operating"])),
        "owner_name": draw(st.sampled_from(["张伟", "王芳", "苏州市某某物流有限公司"])),
        "owner_id_type": id_type,
        "owner_id_number": id_number,
        "owner_phone": draw(st.sampled_from(["13812345678", "+86-512-65230000", None])),
        "coverage_start": beijing(start),
        "coverage_end": beijing(end),
        "premium": draw(st.sampled_from(["950.00", "665", "0.01", "1280.50"])),
        "region_code": draw(st.sampled_from(["320500", "110105", "440300"])),
        "prior_policy_no": "PDAA2024320500000001" if kind == "renew" else None,
        "effective_at": beijing(start + (end - start) / 2) if kind == "surrender" else None,
    }
    misses: dict[str, st.SearchStrategy[Any]] = {
        "insurer_code": st.just("PINGAN"),
        "occurred_at": instants(),
        "plate": near_miss_plates(),
        "vin": wrong_check_vins(),
        "owner_id_number": resident_ids().map(lambda n: n[:-1] + ("0" if n[-1] != "0" else "1")),
        "coverage_start": instants(),
        "coverage_end": instants(),
        "premium": st.sampled_from(["-1", "1e3", "abc", "9.999"]),
        "region_code": st.sampled_from(["000000", "3205"]),
        "version": st.sampled_from([0, -1, "1", 1.5]),
        "effective_at": instants(),
    }
    if near_misses and draw(st.integers(0, 2)) == 0:
        name = draw(st.sampled_from(sorted(misses)))
        fields[name] = draw(misses[name])
    return event(**fields)


def verify_items(known: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One bulk-verify item: a plate or a VIN (often of a known vehicle), maybe an ``at``;
    now and then a field of the wrong type (verify answers those item by item)."""
    plate = st.one_of(plates(), near_miss_plates(), *_known(known, "plate"))
    vin = st.one_of(vins(), wrong_check_vins(), *_known(known, "vin"))
    wrong = st.sampled_from([0, None, [], {}, True, 1.5])
    return st.fixed_dictionaries(
        {},
        optional={
            "plate": st.one_of(plate, plate, wrong),
            "vin": st.one_of(vin, vin, wrong),
            "at": st.one_of(instants(), instants(), wrong),
        },
    )


def _known(known: list[dict[str, Any]], field: str) -> list[st.SearchStrategy[str]]:
    values = sorted({str(e[field]) for e in known})
    return [st.sampled_from(values)] if values else []


def verify_csv(known: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """A verify CSV upload: header ``plate,vin,at`` and rows, sometimes with a stray
    carriage return, a byte that is not UTF-8, or a header naming neither column."""
    text_items = verify_items(known).map(
        lambda item: {k: v for k, v in item.items() if isinstance(v, str)}
    )

    def render(rows: list[dict[str, str]], header: list[str]) -> bytes:
        out = io.StringIO()
        writer = csv.DictWriter(out, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode()

    good = st.builds(
        render,
        st.lists(text_items, max_size=8),
        st.sampled_from([["plate", "vin", "at"], ["vin", "at"], ["plate"], ["at", "x"]]),
    )
    return st.one_of(
        good,
        good,
        good.map(lambda b: b.replace(b"\n", b"\r", 1)),
        good.map(lambda b: b + b"\xff,,\n"),
        good.map(lambda b: b"\xef\xbb\xbf" + b),  # a BOM, as Excel writes
        st.sampled_from([b"plate,vin,at\n\xff,,\n", b'plate,vin,at\n"a\rb",,\n', b""]),
    )


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in events)


def events_csv(events: list[dict[str, Any]]) -> bytes:
    names = sorted({name for e in events for name in e}) or ["policy_no"]
    out = io.StringIO()
    writer = csv.DictWriter(out, names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(events)
    return out.getvalue().encode()


def realified(value: Any, known: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """``value`` (a generated JSON body) with the fields this registry knows by name given
    values that look real, most of the time: whatever new operation takes a ``plate``,
    a ``vin_last6`` or an ``at`` gets plates, tails and instants it can get past."""
    if not isinstance(value, dict):
        return st.just(value)
    tails = [e["vin"][-6:] for e in known] + ["000000"]
    by_field: dict[str, st.SearchStrategy[Any]] = {
        "plate": st.one_of(plates(), *_known(known, "plate")),
        "vin": st.one_of(vins(), *_known(known, "vin")),
        "vin_last6": st.sampled_from(tails),
        "owner_id_number": st.one_of(resident_ids(), *_known(known, "owner_id_number")),
        "at": instants(),
        "since": instants(),
    }
    fields = {
        name: st.one_of(by_field[name], by_field[name], by_field[name], st.just(old))
        for name, old in value.items()
        if name in by_field
    }
    return st.fixed_dictionaries(fields).map(lambda new: {**value, **new})
