"""The search for personal data and secrets in clear, shared by the leak tests.

What is searched for (``Needles``) and where (``scan_tables``: every column of every
table of the live schema, on SQLite the access log's attached file included;
``found_in``: any text, such as a captured log). See
tests/integration/test_no_personal_data_at_rest.py for what is allowed where and why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, func, select

from ctplhub.store.schema import ACCESS_LOG_SCHEMA

# The vehicle's identity (DESIGN §2.4): the only columns where a full VIN may stand. A
# reminder subscription and its outbox rows, and a dispute (DESIGN §10), name their vehicle
# by the same key the policies do (joined on it, and the address is sealed bound to it): no
# VIN is there that ``policies`` does not already hold. The vehicle register (DESIGN §11)
# names its vehicles by VIN as the policies do: it is the key the two are matched on.
VIN_COLUMNS = {
    ("register_lines", "vin"),
    ("policy_events", "vin"),
    ("policies", "vin"),
    ("subscriptions", "vin"),
    ("reminders", "vin"),
    ("disputes", "vin"),
}


@dataclass
class Needles:
    """What must not be found, by kind: ``kind -> {text: label}``."""

    personal: dict[str, str] = field(default_factory=dict)
    vins: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def add_person(self, name: str, id_number: str, phone: str | None) -> None:
        for label, value in (("owner_name", name), ("id_number", id_number), ("phone", phone)):
            if value:
                self.personal[value] = label
                self.personal[hashlib.sha256(value.encode()).hexdigest()] = f"sha256({label})"
        self.personal[id_number.lower()] = "id_number"

    def add_vin(self, vin: str) -> None:
        self.vins[vin] = "vin"
        self.vins[hashlib.sha256(vin.encode()).hexdigest()] = "sha256(vin)"

    def add_event(self, event: dict[str, Any]) -> None:
        self.add_person(event["owner_name"], event["owner_id_number"], event.get("owner_phone"))
        self.add_vin(event["vin"])


def spelled(text: str) -> set[str]:
    """The ways a value can appear in a log line: as is, and JSON-escaped (the standard
    library's JSON renderer writes non-ASCII as \\uXXXX)."""
    return {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}


def found_in(haystack: str, needles: dict[str, str]) -> list[str]:
    """The labels of the needles that occur in ``haystack``, in any spelling."""
    hits = {
        label
        for needle, label in needles.items()
        if any(form in haystack for form in spelled(needle))
    }
    return sorted(hits)


def key_material(home: Path) -> dict[str, str]:
    """Every key under CTPLHUB_HOME/keys, in every encoding a leak could take: the
    base64 text of the file, and the raw bytes' hex and base64 (raw bytes are searched
    in binary columns separately)."""
    found: dict[str, str] = {}
    for path in (home / "keys").rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        strings: list[str] = []
        try:
            _collect_strings(json.loads(text), strings)
        except ValueError:
            strings = text.split()
        for value in strings:
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                continue
            if len(raw) >= 16:
                label = f"key material ({path.name})"
                url_safe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
                found.update({value: label, raw.hex(): label, url_safe: label})
    assert found, "no key material found under CTPLHUB_HOME/keys: the scan would prove nothing"
    return found


def _collect_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, out)


def raw_keys(needles: dict[str, str]) -> dict[bytes, str]:
    return {bytes.fromhex(k): v for k, v in needles.items() if v.startswith("key") and _hex(k)}


def _hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) >= 32


def live_tables(engine: Engine) -> list[Table]:
    """Every table the database holds, reflected: on SQLite, those of the main file and
    those of the attached access log file (``store/schema.py``)."""
    reflected = MetaData()
    reflected.reflect(engine)
    if engine.dialect.name == "sqlite":
        with warnings.catch_warnings():
            # The scan reads rows, not indexes; SQLite's reflection cannot read the access
            # log's expression index (migration 0022) and says so.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            reflected.reflect(engine, schema=ACCESS_LOG_SCHEMA)
    return list(reflected.sorted_tables)


def scan_tables(engine: Engine, needles: Needles) -> list[str]:
    """Every column of every table of the live schema, each value as text and bytes."""
    forbidden = {**needles.personal, **needles.secrets}
    raw = raw_keys(needles.secrets)
    leaks: list[str] = []
    with engine.connect() as conn:
        for table in live_tables(engine):
            rows = conn.execute(select(table)).all()
            for index, column in enumerate(table.columns):
                values = [row[index] for row in rows if row[index] is not None]
                text = "\x1f".join(_as_text(v) for v in values)
                blob = b"\x1f".join(_as_bytes(v) for v in values)
                where = f"{table.fullname}.{column.name}"  # on SQLite, audit.access_log
                leaks += [f"{where}: {label}" for label in found_in(text, forbidden)]
                leaks += [f"{where}: raw {label}" for key, label in raw.items() if key in blob]
                leaks += [
                    f"{where}: {label} as UTF-8"
                    for needle, label in forbidden.items()
                    if needle.encode() in blob
                ]
                if (table.name, column.name) not in VIN_COLUMNS:
                    leaks += [f"{where}: {label}" for label in found_in(text, needles.vins)]
    return leaks


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of the live schema: a scan of empty tables would prove nothing."""
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in live_tables(engine)
        }


def _as_bytes(value: Any) -> bytes:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else b""


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)
