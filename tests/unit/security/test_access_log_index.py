"""The access log's vehicle index is exactly HMAC-SHA256 of the VIN (its fast path pinned
to the standard library's)."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.security.access_log import VehicleIndex


@given(key=st.binary(min_size=32, max_size=64), vin=st.text(max_size=40))
def test_the_index_is_hmac_sha256(key: bytes, vin: str) -> None:
    assert VehicleIndex(key)(vin) == hmac.digest(key, vin.encode("utf-8"), "sha256")


def test_the_index_needs_a_real_key_and_depends_on_it() -> None:
    with pytest.raises(ValueError):
        VehicleIndex(b"short")
    vin = "LSVAU218XN2183294"
    assert VehicleIndex(b"a" * 32)(vin) != VehicleIndex(b"b" * 32)(vin)
    assert VehicleIndex(b"a" * 32)(vin) != VehicleIndex(b"a" * 32)("LFV2A21K6G3049982")
