"""``fast_init`` records behave exactly like the dataclass they replace the constructor of."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from ctplhub.domain.coverage import PolicyState
from ctplhub.domain.policy import EventType
from ctplhub.domain.records import fast_init

MODULES = (
    "ctplhub.domain.coverage",
    "ctplhub.domain.vehicle",
    "ctplhub.domain.freshness",
    "ctplhub.domain.identifiers",
    "ctplhub.domain.policy",
    "ctplhub.services.check_coverage",
    "ctplhub.services.verify_bulk",
    "ctplhub.services.ports",
    "ctplhub.services.ledger_entries",
    "ctplhub.services.ledger_append",
)


def _is_fast(value: object) -> bool:
    init = getattr(value, "__init__", None)
    return (
        init is not None
        and hasattr(init, "__code__")
        and any(name.startswith("_set_") for name in init.__code__.co_names)
    )


def _fast_records() -> list[type]:
    return [
        value
        for name in MODULES
        for value in vars(importlib.import_module(name)).values()
        if inspect.isclass(value)
        and value.__module__ == name
        and dataclasses.is_dataclass(value)
        and _is_fast(value)
    ]


def _plain_twin(cls: type) -> type:
    """The same fields under ``dataclass`` alone, for comparing signatures."""
    return dataclass(frozen=True, slots=True)(
        type(
            cls.__name__,
            (),
            {
                "__annotations__": {f.name: f.type for f in dataclasses.fields(cls)},
                **{
                    f.name: f.default
                    for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING
                },
            },
        )
    )


def test_the_answer_path_records_use_it() -> None:
    names = {cls.__name__ for cls in _fast_records()}
    assert {
        "PolicyState",
        "PlateClaim",
        "VehicleHistory",
        "CoverageResult",
        "FullAnswer",
        "VerifiedItem",
        "Reader",
        "BuiltEntry",
        "LeafReceipt",
    } <= names


@pytest.mark.parametrize("cls", _fast_records(), ids=lambda cls: cls.__qualname__)
def test_signature_is_the_dataclass_one(cls: type) -> None:
    ours = inspect.signature(cls.__init__)
    theirs = inspect.signature(_plain_twin(cls).__init__)
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]


def _state(**changes: object) -> PolicyState:
    values: dict[str, object] = {
        "insurer_code": "PICC",
        "policy_no": "P1",
        "version": 1,
        "event_type": EventType.ISSUE,
        "coverage_start": datetime(2026, 1, 1, tzinfo=UTC),
        "coverage_end": datetime(2027, 1, 1, tzinfo=UTC),
    }
    values.update(changes)
    return PolicyState(**values)  # type: ignore[arg-type]


def test_fields_defaults_equality_hash_and_repr() -> None:
    state = _state()
    assert state.effective_at is None
    positional = PolicyState(
        "PICC", "P1", 1, EventType.ISSUE, state.coverage_start, state.coverage_end
    )
    assert positional == state and hash(positional) == hash(state)
    assert repr(state).startswith("PolicyState(insurer_code='PICC', policy_no='P1'")
    assert dataclasses.replace(state, version=2).version == 2
    assert dataclasses.astuple(state)[:3] == ("PICC", "P1", 1)


def test_still_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _state().version = 3  # type: ignore[misc]


def test_post_init_still_runs() -> None:
    with pytest.raises(ValueError, match="coverage_start must be timezone-aware"):
        _state(coverage_start=datetime(2026, 1, 1))


def test_wrong_arguments_are_refused_like_a_dataclass() -> None:
    with pytest.raises(TypeError):
        PolicyState("PICC")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _state(colour="red")


def test_refuses_what_it_cannot_build() -> None:
    with pytest.raises(TypeError, match="frozen=True, slots=True"):

        @fast_init
        @dataclass(frozen=True)
        class NoSlots:
            a: int

    with pytest.raises(TypeError, match="not supported"):

        @fast_init
        @dataclass(frozen=True, slots=True)
        class Factory:
            a: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match="not supported"):

        @fast_init
        @dataclass(frozen=True, slots=True, kw_only=True)
        class KeywordOnly:
            a: int


def test_a_record_without_fields() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Empty:
        pass

    assert Empty() == Empty()
