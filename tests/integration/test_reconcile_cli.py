"""``ctplhub reconcile CODE FILE`` and ``ctplhub compliance`` run through Typer's
CliRunner against the database and keys of the ``container`` fixture (DESIGN §8, §10)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ctplhub.cli.main import app
from ctplhub.domain.reporting_delays import Month
from helpers import InsurerAccount, event

Env = dict[str, str]


@pytest.fixture
def env(database_url: str, home: Path) -> Env:
    return {
        "CTPLHUB_DATABASE_URL": database_url,
        "CTPLHUB_HOME": str(home),
        "CTPLHUB_REDIS_URL": "",
    }


def run(env: Env, *args: str) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def book(picc: InsurerAccount) -> Iterator[None]:
    answer = picc.api.report_batch([event(policy_no=n) for n in ("R-1", "R-2", "r-3", "R-4")])
    assert answer["accepted"] == 4
    picc.api.report_event(event(policy_no="R-2", event_type="endorse", version=2))
    yield


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    return path


def test_a_matching_export_exits_0_with_both_digests(book: None, env: Env, tmp_path: Path) -> None:
    rows = [("R-4", 1), ("R-1", 1), ("R-2", 2), ("r-3", 1)]
    export = write(tmp_path / "book.ndjson", [{"policy_no": p, "version": v} for p, v in rows])
    text = "".join(f"{p}\t{v}\n" for p, v in sorted(rows, key=lambda r: r[0].encode()))

    result = run(env, "reconcile", "PICC", str(export), "--json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body == {
        "insurer_code": "PICC",
        "match": True,
        "count": 4,
        "digest": hashlib.sha256(text.encode()).hexdigest(),
        "platform_count": 4,
        "platform_digest": hashlib.sha256(text.encode()).hexdigest(),
        "missing_here": [],
        "version_differs": [],
        "unknown_to_you": [],
    }


def test_a_differing_csv_export_lists_what_to_resend_and_exits_1(
    book: None, env: Env, tmp_path: Path
) -> None:
    export = tmp_path / "book.csv"
    export.write_text("policy_no,version\nR-1,1\nR-2,1\nR-9,1\nr-3,1\n", "utf-8")

    as_json = run(env, "reconcile", "picc", str(export), "--json")
    as_text = run(env, "reconcile", "PICC", str(export))

    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert (body["match"], body["count"], body["platform_count"]) == (False, 4, 4)
    assert body["missing_here"] == ["R-9"]
    assert body["version_differs"] == [{"policy_no": "R-2", "yours": 1, "ours": 2}]
    assert body["unknown_to_you"] == ["R-4"]
    assert as_text.exit_code == 1
    assert "books differ" in as_text.output
    assert "missing here (resend): 1" in as_text.output
    assert "R-2: 1 → 2" in as_text.output


def test_a_bad_line_or_an_unknown_insurer_fails_with_the_error_code(
    book: None, env: Env, tmp_path: Path
) -> None:
    export = write(tmp_path / "bad.ndjson", [{"policy_no": "R-1", "version": 1}, {"x": 1}])

    bad = run(env, "reconcile", "PICC", str(export), "--json")
    nobody = run(env, "reconcile", "NOBODY", str(export), "--json")
    missing = run(env, "reconcile", "PICC", str(tmp_path / "none.ndjson"))

    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["error"]["code"] == "validation_failed"
    assert "line 2" in json.loads(bad.stdout)["error"]["message"]
    assert json.loads(nobody.stdout)["error"]["code"] == "unknown_insurer"
    assert missing.exit_code == 2


def test_compliance_prints_json_or_the_csv_report(book: None, env: Env) -> None:
    month = str(Month.of(datetime.now(UTC)))

    as_json = run(env, "compliance", "PICC", "--month", month)
    as_csv = run(env, "compliance", "PICC", "--month", month, "--csv")

    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["events"] == 5
    assert as_csv.stdout.splitlines()[0].startswith("insurer_code,month,day,events,late")
    assert as_csv.stdout.splitlines()[-1].startswith(f"PICC,{month},total,5,5,1.0,")
