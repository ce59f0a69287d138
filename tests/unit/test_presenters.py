"""The presenters' speed-ups, pinned by properties (STYLE.md): the full answer is signed
over bytes equal to RFC 8785's for every answer the service can build, and the coverage
query body is checked by hand exactly as its published model would check it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ctplhub.api import presenters
from ctplhub.api.routers.coverage import coverage_query
from ctplhub.api.schemas import CoverageQueryBody, FullAnswerBody
from ctplhub.domain.coverage import CoverageStatus, Gap
from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.freshness import Caveat, Source
from ctplhub.domain.identifiers import Plate, Vin
from ctplhub.security.answer_signing import AnswerSigner, plain_canonical_json, verify_signed
from ctplhub.services.check_coverage import FullAnswer, PolicyView
from ctplhub.services.live_confirmation import Confirmation
from ctplhub.services.verify_bulk import RejectedItem, VerifiedItem

SIGNER = AnswerSigner({"sig-1": Ed25519PrivateKey.generate()}, "sig-1")
T0 = datetime(2000, 1, 1, tzinfo=UTC)
instants = st.integers(0, 36_000 * 24 * 3600).map(lambda s: T0 + timedelta(seconds=s))
texts = st.text(max_size=12)  # any Unicode: names, messages, control characters
policies = st.builds(PolicyView, texts, st.none() | texts, texts, instants, instants)
answers = st.builds(
    FullAnswer,
    answer_id=texts,
    as_of=instants,
    at=instants,
    plate=st.sampled_from(["苏E12345", "粤BD12345", "京A0000学", "沪A12345"]).map(Plate.parse),
    vin_masked=texts,
    status=st.sampled_from(CoverageStatus),
    current_policy=st.none() | policies,
    next_policy=st.none() | policies,
    covered_until=st.none() | instants,
    days_to_expiry=st.none() | st.integers(-(2**40), 2**40),
    lapsed_since=st.none() | instants,
    days_lapsed=st.none() | st.integers(0, 40_000),
    duplicate_coverage=st.booleans(),
    gaps=st.lists(st.builds(Gap, instants, instants), max_size=3).map(tuple),
    sources=st.lists(st.builds(Source, texts, st.none() | instants, st.booleans()), max_size=3).map(
        tuple
    ),
    caveats=st.lists(
        st.builds(
            Caveat,
            st.sampled_from(["stale_insurer", "insurer_revoked", "insurer_suspended"]),
            st.none() | texts,
            texts,
        ),
        max_size=2,
    ).map(tuple),
)


@settings(max_examples=300)
@given(answers)
def test_a_full_answer_is_signed_over_its_rfc8785_bytes(answer: FullAnswer) -> None:
    unsigned = presenters.full_answer(answer)
    body = orjson.loads(SIGNER.signed_json(unsigned))  # as sent
    assert verify_signed(body, SIGNER.jwks())  # verification recomputes JCS with rfc8785
    assert plain_canonical_json(unsigned) == rfc8785.dumps(unsigned)
    FullAnswerBody.model_validate(body)  # and it is what /openapi.json says


values = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=1),
)
bodies = st.dictionaries(
    st.sampled_from(["plate", "vin_last6", "owner_id_number", "at", "colour"]), values
)


@settings(max_examples=500)
@given(bodies)
def test_the_query_body_is_checked_as_its_model_checks_it(body: dict[str, Any]) -> None:
    try:
        model = CoverageQueryBody.model_validate(body)
    except ValidationError as error:
        with pytest.raises(ValidationFailed) as caught:
            coverage_query(body)
        fields = sorted(p["field"] for p in caught.value.details)
        assert fields == sorted(".".join(map(str, e["loc"])) for e in error.errors())
        return
    query = coverage_query(body)
    assert (query.plate, query.vin_last6, query.owner_id_number, query.at) == (
        model.plate,
        model.vin_last6,
        model.owner_id_number,
        model.at,
    )


vins = st.sampled_from(["LSVAU218XN2183294", "LFV2A21K7A3043227"]).map(Vin.parse)
verified_items = st.builds(
    VerifiedItem,
    plate=st.none() | st.sampled_from(["苏E12345", "粤BD12345", "京A0000学"]).map(Plate.parse),
    vin=st.none() | vins,
    at=instants,
    status=st.sampled_from(CoverageStatus),
    insurer_code=st.none() | texts,
    covered_until=st.none() | instants,
    caveats=st.lists(st.builds(Caveat, texts, st.none() | texts, texts), max_size=2).map(tuple),
    confirmed_by=st.none() | st.builds(Confirmation, texts, instants, st.booleans()),
)
rejected_items = st.builds(
    RejectedItem,
    key=st.sampled_from(["plate", "vin"]),
    given=st.none() | texts,
    at=st.none() | texts,
    error=st.builds(ValidationFailed, texts),
)


@settings(max_examples=300)
@given(st.lists(verified_items | rejected_items, max_size=4))
def test_a_verify_answer_said_plain_is_its_own_rfc8785_bytes(results: list[Any]) -> None:
    """The route signs a verify answer without the JCS check when no item was rejected."""
    bodies = [presenters.verify_result(r) for r in results]
    answer = presenters.verify_answer(bodies)
    plain = presenters.verify_answer_is_plain(bodies)
    assert plain == all(isinstance(r, VerifiedItem) for r in results)
    if plain:
        assert plain_canonical_json(answer) == rfc8785.dumps(answer)
