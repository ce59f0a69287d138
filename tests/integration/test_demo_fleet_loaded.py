"""`ctplhub demo` loads a fleet whose sample vehicles answer with their expected status."""

from __future__ import annotations

from rich.console import Console
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container
from ctplhub.cli.demo import load_demo


def test_demo_samples_answer_as_promised_and_reload_is_idempotent(
    container: Container, client: TestClient
) -> None:
    quiet = Console(quiet=True)
    report = load_demo(container, 300, console=quiet, progress=False)
    assert report["accepted"] > 300 and report["rejected"] == 0
    statuses = set()
    for sample in report["samples"]:
        answer = client.post(
            "/v1/coverage/query",
            json={"plate": sample["plate"], "vin_last6": sample["vin_last6"]},
        )
        if "never insured" in sample["story"]:
            assert answer.status_code == 404
            short = client.post("/v1/coverage/query", json={"plate": sample["plate"]}).json()
            assert short["status_class"] == "NO_RECORD"
            continue
        assert answer.status_code == 200, (sample, answer.text)
        assert answer.json()["status"] == sample["expected_status"], sample
        statuses.add(sample["expected_status"])
    assert statuses >= {"RENEWED", "ACTIVE", "EXPIRING_SOON", "PENDING_START", "LAPSED"}

    again = load_demo(container, 300, console=quiet, progress=False)
    assert again["accepted"] == 0
    assert again["duplicate"] == report["accepted"]
    assert again["samples"] == report["samples"]
