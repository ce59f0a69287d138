"""``ctplhub forecast train|evaluate|rank`` (issue 12 item 6; docs/forecast.md).

- ``train`` draws a synthetic history whose true risk is known, fits the logistic model
  on its training split, reports ROC AUC on the held-out split next to the ceiling (the
  true risk's AUC), and writes the model as JSON with ``--out``;
- ``evaluate`` does the same for an existing model file (default: the configured one);
- ``rank`` lists the vehicles of the database expiring in the next ``--days``, riskiest
  first, or summed by ``--group-by``;
- ``refresh`` stores the day's forecast by group (the regulators' API and page read it),
  as ``ctplhub worker`` does each day by itself.

scikit-learn is imported only by ``train`` and ``evaluate``: every other command, and
the server, start without it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ctplhub.bootstrap import load_lapse_model
from ctplhub.cli.common import JsonFlag, console, emit, fail, open_container
from ctplhub.config import load_settings
from ctplhub.domain.errors import DomainError
from ctplhub.domain.instants import format_instant, parse_instant
from ctplhub.domain.lapse_risk import InvalidModel, LapseModel
from ctplhub.services.risk_history import synthetic_vehicles

if TYPE_CHECKING:
    from ctplhub.forecast.training import Evaluation

forecast_app = typer.Typer(help="Lapse-risk forecast: train, evaluate, rank expiring vehicles.")

Vehicles = Annotated[
    int, typer.Option("--vehicles", min=1_000, max=1_000_000, help="Synthetic fleet size.")
]
Seed = Annotated[int, typer.Option("--seed", help="The synthetic history's seed.")]


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "held_out_vehicles": evaluation.vehicles,
        "held_out_lapsed": evaluation.lapsed,
        "model_auc": round(evaluation.model_auc, 4),
        "ceiling_auc": round(evaluation.ceiling_auc, 4),
        "gap": round(evaluation.gap, 4),
    }


def _history(vehicles: int, seed: int) -> list[Any]:
    return list(synthetic_vehicles(vehicles, now=datetime.now(UTC), seed=seed))


@forecast_app.command("train")
def train_command(
    vehicles: Vehicles = 40_000,
    seed: Seed = 11,
    out: Annotated[Path | None, typer.Option("--out", help="Write the model here (JSON).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train on a synthetic history; print held-out AUC next to the ceiling."""
    from ctplhub.forecast.training import evaluate, split, train

    training, held_out = split(_history(vehicles, seed))
    model = train(training)
    evaluation = evaluate(model, held_out)
    figures = evaluation_json(evaluation)
    model = LapseModel(
        model.intercept,
        model.weights,
        model.top_decile,
        {**model.about, "seed": seed, "fleet": vehicles, **figures},
    )
    if out is not None:
        out.write_text(model.to_json() + "\n", encoding="utf-8")
    emit(
        {**figures, "top_decile": round(model.top_decile, 4), "out": str(out) if out else None},
        as_json,
        _auc_line(evaluation) + (f"; model written to {out}" if out else ""),
    )


@forecast_app.command("evaluate")
def evaluate_command(
    model_path: Annotated[
        Path | None, typer.Option("--model", help="A model file; default the configured one.")
    ] = None,
    vehicles: Vehicles = 40_000,
    seed: Seed = 23,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a model on the held-out split of a fresh synthetic history."""
    from ctplhub.forecast.training import evaluate, split

    try:
        model = load_lapse_model(model_path or load_settings().forecast_model_path)
    except (InvalidModel, OSError) as problem:
        console.print(f"[red]error[/red]: {problem}")
        raise typer.Exit(2) from None
    _, held_out = split(_history(vehicles, seed))
    evaluation = evaluate(model, held_out)
    emit(evaluation_json(evaluation), as_json, _auc_line(evaluation))


def _auc_line(evaluation: Evaluation) -> str:
    return (
        f"held-out ROC AUC {evaluation.model_auc:.4f}, ceiling (true risk) "
        f"{evaluation.ceiling_auc:.4f}, gap {evaluation.gap:.4f} "
        f"({evaluation.vehicles} vehicles, {evaluation.lapsed} lapsed)"
    )


@forecast_app.command("rank")
def rank_command(
    at: Annotated[str | None, typer.Option("--at", help="RFC 3339 instant; default now.")] = None,
    days: Annotated[int, typer.Option("--days", help="Expiring within this many days.")] = 30,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Vehicles to list.")] = 20,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="region, province, vehicle_type, use_nature")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The vehicles expiring soon, riskiest first (or summed by --group-by)."""
    with open_container() as container:
        try:
            instant = parse_instant(at, "at") if at is not None else None
            if group_by is not None:
                groups = container.forecast.grouped(group_by, instant, days)
                rows = [
                    {
                        "key": g.key,
                        "vehicles": g.vehicles,
                        "expected_lapses": g.expected_lapses,
                        "mean_risk": g.mean_risk,
                        "top_decile": g.top_decile,
                    }
                    for g in groups
                ]
                _show({"group_by": group_by, "rows": rows}, rows, as_json)
                return
            ranked = container.forecast.rank(instant, days)
        except DomainError as error:
            fail(error, as_json)
    vehicles = [
        {
            "vin_masked": r.vin_masked,
            "region_code": r.features.region_code,
            "covered_until": format_instant(r.covered_until),
            "risk": round(r.risk, 4),
            "top_decile": r.top_decile,
        }
        for r in ranked[:limit]
    ]
    _show({"expiring": len(ranked), "vehicles": vehicles}, vehicles, as_json)


@forecast_app.command("refresh")
def refresh_command(
    at: Annotated[
        str | None,
        typer.Option("--at", help="An instant of the Beijing day to store (default: today)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Store the day's lapse forecast by group (replacing one stored for that day)."""
    with open_container() as container:
        try:
            instant = parse_instant(at, "at") if at is not None else None
        except DomainError as error:
            fail(error, as_json)
            return
        started = time.perf_counter()
        run = container.forecast.refresh(instant)
        elapsed = round(time.perf_counter() - started, 3)
    emit(
        {
            "as_of": format_instant(run.as_of),
            "computed_at": format_instant(run.computed_at),
            "vehicles": run.vehicles,
            "elapsed_s": elapsed,
        },
        as_json,
        f"forecast at {format_instant(run.as_of)} stored: {run.vehicles:,} vehicles expiring "
        f"within 90 days, in {elapsed} s",
    )


def _show(payload: dict[str, Any], rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False))
        return
    table = Table(*(rows[0] if rows else ["(none expiring)"]))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
