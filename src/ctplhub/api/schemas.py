"""Request and response schemas: they document the API (OpenAPI) and validate the
bodies we read by hand. Field rules of the domain stay in the domain.

Response models forbid fields they do not name: the suite checks every JSON answer
against them (``tests/schema_check.py``), so the documents cannot drift from the code.
"""

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


class _Answer(BaseModel):
    """A response body: exactly the fields named, nothing more."""

    model_config = ConfigDict(extra="forbid")


class LeafReceiptBody(_Answer):
    """A batch line's ledger receipt (DESIGN §6): its leaf, and the salts that open the
    commitments of its plate, VIN and personal fields (never published)."""

    leaf_index: int
    leaf_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    salts: dict[str, str]


class LedgerReceiptBody(LeafReceiptBody):
    """A single event's ledger receipt: ``inclusion_proof`` (RFC 9162's audit path) proves
    the leaf in ``tree_head``, the head the event's transaction signed."""

    tree_head: TreeHeadAnswer
    inclusion_proof: list[str]


class EventReceipt(_Answer):
    event_id: int
    insurer_code: str
    policy_no: str
    version: int
    content_hash: str
    received_at: str = Field(examples=["2026-11-25T02:00:00.123456Z"])
    receipt: LedgerReceiptBody | None = None  # absent only for an event older than the ledger


class ErrorDetail(_Answer):
    code: str = Field(examples=["invalid_plate"])
    message: str
    details: Any = None


class ErrorAnswer(_Answer):
    """Every error: ``{"error": {"code", "message", "details"?}}`` (DESIGN §3)."""

    error: ErrorDetail


class LineResultBody(_Answer):
    line: int
    status: Literal["accepted", "duplicate", "rejected"]
    error: ErrorDetail | None = None
    receipt: LeafReceiptBody | None = None  # accepted lines only


class BatchAnswer(_Answer):
    accepted: int
    duplicate: int
    rejected: int
    # The tree head signed by the batch's last transaction: it holds every accepted line's
    # leaf (absent when none was accepted).
    tree_head: TreeHeadAnswer | None = None
    results: list[LineResultBody]


class HeartbeatBody(BaseModel):
    at: str | None = Field(default=None, examples=["2026-11-25T10:00:00+08:00"])


class SyncStatusBody(_Answer):
    insurer_code: str
    status: Literal["certified", "suspended", "revoked"]
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


Status = Literal["RENEWED", "ACTIVE", "EXPIRING_SOON", "PENDING_START", "LAPSED", "NO_RECORD"]


class PolicyBody(_Answer):
    insurer_code: str
    insurer_name: str | None
    policy_no_masked: str
    coverage_start: str
    coverage_end: str


class NextPolicyBody(_Answer):
    insurer_code: str
    coverage_start: str
    coverage_end: str


class GapBody(_Answer):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from")
    to: str


class FlagsBody(_Answer):
    duplicate_coverage: bool
    gaps: list[GapBody]


class SourceBody(_Answer):
    insurer_code: str
    last_sync_at: str | None
    stale: bool


class CaveatBody(_Answer):
    # ``confirmation_unavailable``: a live confirmation (DESIGN §10) got no usable answer.
    code: Literal[
        "stale_insurer", "insurer_revoked", "insurer_suspended", "confirmation_unavailable"
    ]
    insurer_code: str | None
    message: str


class SignatureBody(_Answer):
    alg: Literal["Ed25519"]
    kid: str
    value: str


class FullAnswerBody(_Answer):
    """The signed answer of DESIGN §3.1."""

    answer_id: str
    as_of: str
    at: str
    plate: str = Field(examples=["苏E·12345"])
    vin_masked: str
    status: Status
    status_text: str
    current_policy: PolicyBody | None
    next_policy: NextPolicyBody | None
    covered_until: str | None
    days_to_expiry: int | None
    lapsed_since: str | None
    days_lapsed: int | None
    flags: FlagsBody
    sources: list[SourceBody]
    caveats: list[CaveatBody]
    signature: SignatureBody


class ShortAnswerBody(_Answer):
    """Without a verification factor: covered or not, nothing personal."""

    plate: str
    covered: bool
    status_class: Literal["COVERED", "NOT_COVERED", "NO_RECORD"]
    caveats: list[CaveatBody]


class VerifyItem(BaseModel):
    plate: str | None = None
    vin: str | None = None
    at: str | None = None


# A reason code of DESIGN §3 (``roadside_check``, ``accident``, ``inspection``,
# ``hotline``): what the access log keeps as an entry's ``purpose``. Routes check it by
# hand with the same pattern (``api/routers/coverage.py``, ``purpose_code``).
PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
DEFAULT_VERIFY_PURPOSE = "bulk_verify"


class VerifyBody(BaseModel):
    """Up to 10,000 items and, optionally, why they are looked up: a reason code kept as
    the ``purpose`` of each access-log entry (``bulk_verify`` when not given). A CSV
    upload gives it in the ``X-CTPL-Purpose`` header instead."""

    items: list[VerifyItem]
    purpose: str = Field(
        default=DEFAULT_VERIFY_PURPOSE, pattern=PURPOSE_PATTERN, examples=["accident"]
    )


class VerifyResultBody(_Answer):
    """One item's answer: ``plate`` or ``vin`` as asked; ``error`` only when ``covered``
    is null; ``caveats`` only when there are any (DESIGN §3.1)."""

    plate: str | None = None
    vin: str | None = None
    at: str | None
    covered: bool | None
    status: Status | None
    insurer_code: str | None
    covered_until: str | None
    error: ErrorDetail | None = None
    caveats: list[CaveatBody] | None = None
    confirmed_by: ConfirmedByBody | None = None


class ConfirmedByBody(_Answer):
    """A live confirmation (DESIGN §10): which insurer answered, when (``at``: when its
    answer came), and its word, which the item's ``covered`` then is; the item's
    ``status`` stays the registry's own."""

    insurer_code: str
    at: str
    covered: bool


class VerifyAnswer(_Answer):
    """The results in the order asked, signed as one object by the rule of DESIGN §3.1
    (JCS of the answer without ``signature``), so that a report can quote it whole."""

    results: list[VerifyResultBody]
    signature: SignatureBody


class HealthBody(_Answer):
    status: Literal["ok"]


class ReadyPartBody(_Answer):
    """One part a process depends on (docs/deploy.md)."""

    status: Literal["up", "down"]
    lag_leaves: int | None = Field(None, description="ledger leaves the replica lacks")
    lag_bytes: int | None = Field(None, description="WAL bytes the replica has not replayed")
    lag_s: float | None = Field(None, description="seconds behind, while WAL waits")


class ReadyBody(_Answer):
    status: Literal["ready"]
    parts: dict[str, ReadyPartBody] = Field(
        description="database (the primary; decides readiness), and replica and redis when "
        "the deployment has them"
    )


class JwkBody(_Answer):
    """An RFC 8037 public key (``OKP``, ``Ed25519``)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    kid: str
    x: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class JwksBody(_Answer):
    keys: list[JwkBody]


ActorRole = Literal[
    "owner", "insurer", "police", "regulator", "agent", "admin", "auditor", "registrar"
]


class AccessLogEntryBody(_Answer):
    """One read of the vehicle's data (DESIGN §5.3): when, by which role, why."""

    at: str = Field(examples=["2026-11-25T10:00:00+08:00"])
    actor_role: ActorRole
    purpose: str = Field(examples=["coverage_query"])


class AccessLogAnswer(_Answer):
    """Who read this vehicle's data: newest first, the last 365 days, at most 500."""

    entries: list[AccessLogEntryBody]


class AgentQueryBody(CoverageQueryBody):
    """A hotline agent's query on a caller's behalf: a verified query body (a factor is
    required) plus its ``purpose``, a reason code (DESIGN §3) kept in the access log."""

    purpose: str = Field(pattern=PURPOSE_PATTERN, examples=["hotline"])


class CertificateBody(_Answer):
    """An e-certificate (DESIGN §6.1), signed by the rule of §3.1 with ``kid`` inside the
    signed body too."""

    cert_id: str
    kid: str
    plate: str = Field(examples=["苏E·12345"])
    vin_masked: str
    insurer_code: str
    policy_no_masked: str
    coverage_start: str
    coverage_end: str
    issued_at: str
    signature: SignatureBody


class CertificateAnswer(_Answer):
    """``token`` is the compact form for a QR code: ``base64url(JCS(certificate without
    signature)) + "." + base64url(signature)``; ``qr_svg`` is that QR code."""

    certificate: CertificateBody
    token: str
    qr_svg: str


class CertificateTokenBody(BaseModel):
    """A certificate's compact token, as issued or read from its QR code."""

    model_config = ConfigDict(extra="forbid")
    token: str


class LiveStatusBody(_Answer):
    """The registry's answer now for the certificate's vehicle, whichever insurer covers it."""

    status: Status
    covered: bool
    as_of: str


class CertificateCheckAnswer(_Answer):
    """``valid`` is the signature check; when false, ``certificate`` and ``live`` are null.
    ``live`` is also null when this registry holds no record of the certificate."""

    valid: bool
    certificate: CertificateBody | None
    live: LiveStatusBody | None


# The public ledger (DESIGN §6). Hashes are lowercase hex (§3.1).
HEX_HASH = r"^[0-9a-f]{64}$"


class TreeHeadAnswer(_Answer):
    """A signed tree head: ``timestamp`` in milliseconds since the epoch, signed by the
    rule of §3.1 (JCS of the object without ``signature``)."""

    tree_size: int = Field(ge=0)
    root_hash: str = Field(pattern=HEX_HASH)
    timestamp: int = Field(ge=0)
    signature: SignatureBody


class InclusionProofAnswer(_Answer):
    """RFC 9162 §2.1.3.1: the audit path of ``leaf_index`` in the tree of ``tree_size``."""

    leaf_index: int
    tree_size: int
    audit_path: list[str]


class ConsistencyProofAnswer(_Answer):
    """RFC 9162 §2.1.4.1: the proof that the tree of ``second`` extends that of ``first``."""

    first: int
    second: int
    consistency_path: list[str]


class LedgerEntryBody(_Answer):
    """One leaf: the entry (its JCS bytes hash to ``leaf_hash`` as ``SHA-256(0x00 ||
    entry)``) with plate, VIN and personal fields as salted commitments."""

    leaf_index: int
    entry: dict[str, str | int]
    leaf_hash: str = Field(pattern=HEX_HASH)


class LedgerEntriesAnswer(_Answer):
    entries: list[LedgerEntryBody]


# The natural-language assistant (DESIGN §3, ``POST /v1/ask``; api/routers/ask.py).
AskIntent = Literal[
    "renewal_status",
    "expiry_date",
    "insurer",
    "how_to_renew",
    "lapse_consequences",
    "subscribe",
    "dispute",
    "unknown",
]


class AskBody(BaseModel):
    """A question in Chinese or English, and optionally the factor that lets a question
    about a vehicle be answered from its verified coverage."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=500, examples=["苏E12345的交强险续保了吗？"])
    vin_last6: str | None = Field(default=None, examples=["183294"])


class AskAnswer(_Answer):
    """``plate`` in display form (null when none was found); ``answer`` in the question's
    ``language``; ``needs_verification`` when a vehicle question came without
    ``vin_last6``; ``coverage`` the signed full answer of §3.1 when it was verified."""

    intent: AskIntent
    plate: str | None = Field(examples=["苏E·12345"])
    language: Literal["zh", "en"]
    answer: str
    needs_verification: bool
    coverage: FullAnswerBody | None


# --- Reminders (DESIGN §7; issue 9) ---


class SubscriptionBody(CoverageQueryBody):
    """A verified query body (plate plus ``vin_last6`` or ``owner_id_number``; no ``at``)
    plus where to remind: e-mail, SMS (a mobile number) or webhook (an https URL)."""

    channel: Literal["email", "sms", "webhook"]
    address: str = Field(examples=["owner@example.com"])
    language: Literal["zh-CN", "en"] | None = Field(default=None, examples=["zh-CN"])


class SubscriptionAnswer(_Answer):
    """``unsubscribe_token`` ends the subscription (``DELETE /v1/subscriptions/{id}
    ?token=``); every message carries it too. A webhook subscription also gets
    ``webhook_secret``, shown this once: the key of its messages' signatures."""

    subscription_id: int
    unsubscribe_token: str
    webhook_secret: str | None = None


class GhostCoverBody(_Answer):
    """A policy surrendered or cancelled within 30 days of its issue."""

    insurer_code: str
    policy_no: str
    event_type: Literal["surrender", "cancel"]
    issued_at: str
    closed_at: str
    coverage_start: str
    covered_until: str
    days_after_issue: int


class GhostCoverAnswer(_Answer):
    """Possible buy-then-cancel ("ghost") cover, by closing instant, oldest first."""

    items: list[GhostCoverBody]


# --- data you can trust (DESIGN §2.6, §10): sync health, reconciliation, late reports --


class SyncHealthBody(SyncStatusBody):
    """``GET /v1/insurers/{code}/sync``: the fields of §3, then the watermark (§2.6),
    accepted and rejected in total, and the last 24 h's reporting delay."""

    watermark: str | None
    accepted_total: int
    rejected_total: int
    events_24h: int
    late_24h: int
    median_delay_s: float | None


class ReconcileDigestBody(BaseModel):
    """The insurer's count and digest of its book (DESIGN §10)."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0)
    digest: str = Field(pattern=HEX_HASH, description="lowercase hex SHA-256")


class ReconcileDigestAnswer(_Answer):
    match: bool
    platform_count: int
    platform_digest: str = Field(pattern=HEX_HASH)


class VersionDiffersBody(_Answer):
    policy_no: str
    yours: int
    ours: int


class ReconcileDiffAnswer(_Answer):
    missing_here: list[str]
    version_differs: list[VersionDiffersBody]
    unknown_to_you: list[str]


class ComplianceAnswer(_Answer):
    insurer_code: str
    month: str = Field(examples=["2026-11"])
    events: int
    late: int
    late_share: float = Field(ge=0, le=1)
    median_delay_s: float | None
    p95_delay_s: float | None


class ConfirmEndpointBody(BaseModel):
    """Where the platform asks this insurer to confirm a "not covered" live (DESIGN §10):
    an absolute http(s) URL; ``null`` removes it."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(examples=["https://ctpl.example-insurer.cn/ctplhub/confirm"])


class ConfirmEndpointAnswer(_Answer):
    insurer_code: str
    url: str | None
    updated_at: str


class QualityFlagBody(_Answer):
    """A data-quality flag on an accepted event (docs/DECISIONS.md, "Data-quality flags")."""

    flag_id: int
    policy_no: str
    version: int
    code: Literal[
        "vin_plate_changed", "plate_on_two_vehicles", "period_too_long", "premium_outlier"
    ]
    message: str
    flagged_at: str


class QualityFlagsAnswer(_Answer):
    """An insurer's flags, newest first; ``next_cursor`` continues the list (null at its end)."""

    insurer_code: str
    flags: list[QualityFlagBody]
    next_cursor: int | None


# --- Disputes (DESIGN §10; issue 10 item 5) ---

DisputeKind = Literal["renewal_missing", "wrong_data", "other"]
DisputeStatusName = Literal["open", "resolved", "escalated"]


class DisputeBody(CoverageQueryBody):
    """A verified query body (plate plus ``vin_last6`` or ``owner_id_number``; no ``at``)
    plus the complaint: its kind and a message (1-2,000 characters) for the insurer."""

    kind: DisputeKind
    message: str = Field(min_length=1, max_length=2000, examples=["已在3月1日续保，查询显示脱保"])


class DisputeFiledAnswer(_Answer):
    """The dispute went to ``insurer_code`` (the insurer of the vehicle's latest policy),
    which must answer by ``due_at``. ``token`` reads its status; it is shown only once."""

    dispute_id: int
    status: Literal["open"]
    insurer_code: str
    due_at: str
    token: str


class DisputeTokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str


class DisputeHistoryBody(_Answer):
    at: str
    status: DisputeStatusName
    note: str | None


class DisputeStatusAnswer(_Answer):
    """The dispute's status and every step, oldest first. A resolution's ``note`` starts
    with its outcome (``corrected: …`` or ``rejected: …``)."""

    dispute_id: int
    status: DisputeStatusName
    history: list[DisputeHistoryBody]


class DisputeResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["corrected", "rejected"]
    note: str = Field(min_length=1, max_length=2000, examples=["已补报续保保单"])


class DisputeItemBody(_Answer):
    dispute_id: int
    kind: DisputeKind
    plate: str
    message: str
    opened_at: str
    due_at: str
    status: DisputeStatusName


class InsurerDisputesAnswer(_Answer):
    """The insurer's disputes, oldest first (at most 1,000), signed by the rule of §3.1
    (JCS of the answer without ``signature``): the queue an insurer may have to show."""

    disputes: list[DisputeItemBody]
    signature: SignatureBody


class RegulatorDisputeItemBody(DisputeItemBody):
    insurer_code: str


class RegulatorDisputesAnswer(_Answer):
    """Disputes in one status across insurers (escalated by default), oldest first (at
    most 1,000), signed like the insurers' list."""

    disputes: list[RegulatorDisputeItemBody]
    signature: SignatureBody


# --- Cross-department sharing (DESIGN §11) ---------------------------------------------


class RegisterLineResultBody(_Answer):
    line: int
    status: Literal["accepted", "duplicate", "rejected"]
    error: ErrorDetail | None = None


class RegisterBatchAnswer(_Answer):
    """The register feed's answer: a batch answer of §3."""

    accepted: int
    duplicate: int
    rejected: int
    results: list[RegisterLineResultBody]


class UninsuredBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region_prefix: str = Field(
        pattern=r"^[0-9]{0,6}$",
        examples=["3205"],
        description="leading digits of the register's region code; empty: the whole country",
    )
    at: str | None = Field(default=None, examples=["2026-11-25T10:00:00+08:00"])
    cursor: str | None = Field(default=None, description="next_cursor of the page before")
    limit: int = Field(default=100, ge=1, le=1000)
    purpose: str = Field(default="uninsured_list", pattern=PURPOSE_PATTERN)


class UninsuredVehicleBody(_Answer):
    plate: str = Field(examples=["苏E·12345"])
    vin_masked: str = Field(examples=["LSVAU218XN2******"])
    region_code: str = Field(examples=["320505"])
    lapsed_since: str | None
    last_insurer_code: str | None


class UninsuredAnswer(_Answer):
    vehicles: list[UninsuredVehicleBody]
    next_cursor: str | None


class UnmatchedPolicyBody(_Answer):
    policy_no: str
    reason: Literal["vin_not_registered", "plate_differs"]
    register_plate: str | None = None  # plate_differs only: the register's plate


class UnmatchedAnswer(_Answer):
    policies: list[UnmatchedPolicyBody]


class AccidentLookupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plate: str = Field(examples=["苏E·12345"])
    at: str = Field(examples=["2026-11-25T10:00:00+08:00"])
    accident_ref: str = Field(min_length=1, max_length=64, examples=["苏公交认字[2026]0123"])
    reason: str = Field(pattern=PURPOSE_PATTERN, examples=["collision"])


class AccidentLookupAnswer(_Answer):
    covered: bool
    insurer_code: str | None
    insurer_name: str | None
    claims_phone: str | None
    policy_no_masked: str | None
