"""Request and response schemas: they document the API (OpenAPI) and validate the
bodies we read by hand. Field rules of the domain stay in the domain."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ctplhub.domain.policy import EventType, OwnerIdType, UseNature, VehicleType


class PolicyEventBody(BaseModel):
    """One policy event (DESIGN §2.4): the policy's whole state as of ``version``."""

    model_config = ConfigDict(extra="forbid")
    insurer_code: str = Field(examples=["PICC"])
    policy_no: str = Field(min_length=1, max_length=40, examples=["PDAA202532050000012345"])
    event_type: EventType
    version: int = Field(ge=1)
    occurred_at: str = Field(examples=["2025-02-20T10:30:00+08:00"])
    plate: str = Field(examples=["苏E·12345"])
    vin: str = Field(examples=["LSVAU218XN2183294"])
    vehicle_type: VehicleType
    use_nature: UseNature
    owner_name: str
    owner_id_type: OwnerIdType
    owner_id_number: str
    owner_phone: str | None = None
    coverage_start: str = Field(examples=["2025-03-01T00:00:00+08:00"])
    coverage_end: str = Field(examples=["2026-03-01T00:00:00+08:00"])
    premium: str = Field(examples=["950.00"])
    region_code: str = Field(examples=["320500"])
    prior_policy_no: str | None = None
    effective_at: str | None = None


def event_body_doc() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PolicyEventBody.model_json_schema()}},
        }
    }


class EventReceipt(BaseModel):
    event_id: int
    insurer_code: str
    policy_no: str
    version: int
    content_hash: str
    received_at: str


class LineError(BaseModel):
    code: str
    message: str
    details: Any = None


class LineResultBody(BaseModel):
    line: int
    status: Literal["accepted", "duplicate", "rejected"]
    error: LineError | None = None


class BatchAnswer(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[LineResultBody]


class HeartbeatBody(BaseModel):
    at: str | None = Field(default=None, examples=["2026-11-25T10:00:00+08:00"])


class SyncStatus(BaseModel):
    insurer_code: str
    status: str
    last_sync_at: str | None
    lag_s: float | None
    stale: bool
    accepted_24h: int
    rejected_24h: int


class CoverageQueryBody(BaseModel):
    """A plate plus, for the full answer, one verification factor."""

    model_config = ConfigDict(extra="forbid")
    plate: str = Field(examples=["苏E12345"])
    vin_last6: str | None = Field(default=None, examples=["183294"])
    owner_id_number: str | None = None
    at: str | None = Field(default=None, examples=["2026-11-25T10:00:00+08:00"])


class PolicyView(BaseModel):
    insurer_code: str
    insurer_name: str | None
    policy_no_masked: str
    coverage_start: str
    coverage_end: str


class NextPolicyView(BaseModel):
    insurer_code: str
    coverage_start: str
    coverage_end: str


class Gap(BaseModel):
    from_: str = Field(alias="from")
    to: str


class Flags(BaseModel):
    duplicate_coverage: bool
    gaps: list[Gap]


class Source(BaseModel):
    insurer_code: str
    last_sync_at: str | None
    stale: bool


class Caveat(BaseModel):
    code: str
    insurer_code: str | None = None
    message: str


class Signature(BaseModel):
    alg: Literal["Ed25519"]
    kid: str
    value: str


class FullAnswer(BaseModel):
    """The signed answer of DESIGN §3.1."""

    answer_id: str
    as_of: str
    at: str
    plate: str
    vin_masked: str
    status: str
    status_text: str
    current_policy: PolicyView | None
    next_policy: NextPolicyView | None
    covered_until: str | None
    days_to_expiry: int | None
    lapsed_since: str | None
    days_lapsed: int | None
    flags: Flags
    sources: list[Source]
    caveats: list[Caveat]
    signature: Signature


class ShortAnswer(BaseModel):
    """Without a verification factor: covered or not, nothing personal."""

    plate: str
    covered: bool
    status_class: Literal["COVERED", "NOT_COVERED", "NO_RECORD"]
    caveats: list[Caveat]


class VerifyItem(BaseModel):
    plate: str | None = None
    vin: str | None = None
    at: str | None = None


class VerifyBody(BaseModel):
    items: list[VerifyItem]


class VerifyResult(BaseModel):
    plate: str | None = None
    vin: str | None = None
    at: str | None
    covered: bool | None
    status: str | None
    insurer_code: str | None
    covered_until: str | None
    error: LineError | None = None


class VerifyAnswer(BaseModel):
    results: list[VerifyResult]
