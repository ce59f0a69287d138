"""``ctplhub forecast train`` and ``evaluate``: AUC next to the ceiling, a JSON model."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ctplhub.cli.main import app
from ctplhub.domain.lapse_risk import LapseModel


def test_train_writes_a_json_model_that_evaluate_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    trained = CliRunner().invoke(
        app, ["forecast", "train", "--vehicles", "3000", "--out", str(out), "--json"]
    )
    assert trained.exit_code == 0, trained.output
    figures = json.loads(trained.stdout)
    assert abs(figures["ceiling_auc"] - figures["model_auc"] - figures["gap"]) < 1e-3
    model = LapseModel.from_json(out.read_text())
    assert model.about["fleet"] == 3000 and 0 < model.top_decile < 1

    evaluated = CliRunner().invoke(
        app, ["forecast", "evaluate", "--model", str(out), "--vehicles", "3000", "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    again = json.loads(evaluated.stdout)
    assert again["held_out_vehicles"] > 500 and again["gap"] < 0.06


def test_evaluate_refuses_a_file_that_is_not_a_lapse_model(tmp_path: Path) -> None:
    bad = tmp_path / "model.json"
    bad.write_text('{"kind": "something else"}')
    result = CliRunner().invoke(app, ["forecast", "evaluate", "--model", str(bad)])
    assert result.exit_code == 2
    assert "not a ctplhub lapse model" in result.output
