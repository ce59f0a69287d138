"""SQLAlchemy Core tables: one schema for SQLite and PostgreSQL (DESIGN §4).

Tables live apart from domain classes; repositories map rows explicitly. Personal
fields are stored only as AES-GCM blobs (``*_enc``, the key id inside each blob) and the
ID number also as an HMAC blind index (``owner_id_bidx``) so it can be searched.

Indexes are chosen for the two hot reads at 10 million policies:
- plate → vehicle: ``ix_events_plate`` (plate, occurred_at, id) finds the claims on a
  plate newest first; ``ix_events_vin`` (vin, occurred_at, id) finds a vehicle's newest
  event, i.e. its current plate and owner;
- vehicle → policies: ``ix_policies_vin`` on the one-row-per-policy head table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id64 = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both engines.

    SQLite keeps no offset, so everything is stored in UTC and the offset is put back
    on the way out; naive values are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


insurers = Table(
    "insurers",
    metadata,
    Column("code", String(20), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("status_changed_at", UTCDateTime, nullable=False),
    Column("status_changed_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sync_at", UTCDateTime, nullable=True),
    # The number police give the other party after an accident (DESIGN §11; 0015).
    Column("claims_phone", String(20), nullable=True),
)

insurer_status_changes = Table(
    "insurer_status_changes",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("insurer_code", String(20), ForeignKey("insurers.code"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

insurer_keys = Table(
    "insurer_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("insurer_code", String(20), ForeignKey("insurers.code"), nullable=False, index=True),
    # The HMAC secret must be readable to check signatures, so it is encrypted, not hashed.
    Column("secret_enc", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    # Accounts (0003): the token's end, and the staff password as an Argon2id PHC string.
    Column("token_expires_at", UTCDateTime, nullable=False),
    Column("password_hash", String(255), nullable=True),
)

# Staff page sessions, server-side so that disabling a user or signing out ends them in
# every process at once; only the SHA-256 of the cookie's session id is kept.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Id64, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

policy_events = Table(
    "policy_events",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("insurer_code", String(20), nullable=False),
    Column("policy_no", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("plate", String(16), nullable=False),
    Column("vin", String(17), nullable=False),
    Column("vehicle_type", String(24), nullable=False),
    Column("use_nature", String(16), nullable=False),
    Column("owner_id_type", String(16), nullable=False),
    Column("owner_name_enc", LargeBinary, nullable=False),
    Column("owner_id_enc", LargeBinary, nullable=False),
    Column("owner_phone_enc", LargeBinary, nullable=True),
    Column("owner_id_bidx", LargeBinary(32), nullable=False),
    Column("coverage_start", UTCDateTime, nullable=False),
    Column("coverage_end", UTCDateTime, nullable=False),
    Column("effective_at", UTCDateTime, nullable=True),
    Column("premium", Numeric(12, 2), nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("prior_policy_no", String(40), nullable=True),
    Column("content_hash", String(64), nullable=False),
    UniqueConstraint("insurer_code", "policy_no", "version", name="uq_policy_events_key"),
    Index("ix_events_plate", "plate", "occurred_at", "id"),
    Index("ix_events_vin", "vin", "occurred_at", "id"),
    Index("ix_events_owner_bidx", "owner_id_bidx"),
)

policies = Table(
    "policies",
    metadata,
    Column("insurer_code", String(20), primary_key=True),
    Column("policy_no", String(40), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("vin", String(17), nullable=False),
    Column("coverage_start", UTCDateTime, nullable=False),
    Column("coverage_end", UTCDateTime, nullable=False),
    Column("effective_at", UTCDateTime, nullable=True),
    Column("event_id", BigInteger, nullable=False),
    Index("ix_policies_vin", "vin"),
    # SQLite keeps the heads in the key's own B-tree: an insurer's book is one range of
    # the file (reconciliation; migration 0013).
    sqlite_with_rowid=False,
)

insurer_activity = Table(
    "insurer_activity",
    metadata,
    Column("insurer_code", String(20), primary_key=True),
    Column("minute", UTCDateTime, primary_key=True),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
)

request_nonces = Table(
    "request_nonces",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False, index=True),
)

# Who read which vehicle's data, and why (DESIGN §5.3; migration 0002). Append-only: a
# trigger refuses UPDATE and DELETE on both engines. The vehicle is named by a keyed
# HMAC of its VIN (its own key, ``access-log.key``), never by the VIN or the plate.
# On PostgreSQL it is partitioned by month of ``at`` (migration 0008,
# ``store/access_log_partitions.py``), and its primary key there is (id, at).
access_log = Table(
    "access_log",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("vehicle_key", LargeBinary(32), nullable=False),
    Column("request_id", String(64), nullable=True),
    # An accident look-up's case reference and reason code (DESIGN §11; migration 0015).
    Column("reference", String(64), nullable=True),
    Column("reason", String(40), nullable=True),
)
# The vehicle's entries are found by the first 8 bytes of its key (migration 0022): a
# third of the index a whole key and instant made, for the random keys of a batch.
ACCESS_LOG_KEY_PREFIX = 8


def vehicle_key_prefix(table: Table) -> ColumnElement[bytes]:
    """The vehicle index's expression on ``table`` (``access_log`` or SQLite's copy of it in
    the log's own file). Its literals are written out, not bound: a query names this very
    expression to use the index, and neither engine matches a bound ``substr`` argument."""
    return func.substr(
        table.c.vehicle_key, literal_column("1"), literal_column(str(ACCESS_LOG_KEY_PREFIX))
    )


Index("ix_access_log_vehicle_prefix", vehicle_key_prefix(access_log))

# Envelope data keys (DESIGN §5.3; migration 0004): each personal-data or blind-index key,
# wrapped (AES-256-GCM) by a master key that lives only in CTPLHUB_HOME/keys. In the
# database so that every process sees a new active key at once (security/envelope.py).
# ``seq`` numbers the keys of one purpose; a blind index names its key by that number.
data_keys = Table(
    "data_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("purpose", String(8), nullable=False),  # "field" | "blind"
    Column("seq", Integer, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("master_kid", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # "active" | "retiring" | "retired"
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),
    UniqueConstraint("purpose", "seq", name="uq_data_keys_purpose_seq"),
)

# The tamper-evident ledger (DESIGN §6; migrations 0006, 0009): an RFC 9162 Merkle log
# with one leaf per accepted policy event, appended in the event's own transaction.
# - ``ledger_leaves``: leaf ``leaf_index`` is the JCS entry of event ``event_id`` (plate,
#   VIN and personal fields replaced by salted commitments); ``salts_enc`` holds those
#   salts, sealed like any personal field, so the auditor can rebuild the entry from the
#   stored event and the insurer's receipt can be given again. ``hashes`` holds the
#   stored hashes this leaf wrote when it was appended (Go sumdb/tlog's stored-hash index,
#   ``ledger/storage.py``), 32 bytes each, concatenated in index order: its leaf hash,
#   then the hash of every complete subtree it finishes (one per trailing 1-bit of
#   ``leaf_index``; two on average). Stored index ``i`` with ``(level, n) =
#   split_stored_hash_index(i)`` is in the row of leaf ``((n + 1) << level) - 1`` at byte
#   ``level * 32``, so a proof still reads O(log n) rows, and an append writes one row
#   per event (docs/DECISIONS.md, "Ledger: one row per leaf").
# - ``ledger_tree_heads``: every tree head the platform signed, for receipts and the audit.
ledger_leaves = Table(
    "ledger_leaves",
    metadata,
    # Id64: on SQLite an INTEGER PRIMARY KEY is the rowid itself, no second index.
    Column("leaf_index", Id64, primary_key=True, autoincrement=False),
    # No foreign key, like ``policies.event_id``: PostgreSQL would check it row by row on
    # every append (a tenth of the ledger's ingest cost); a leaf naming no stored event is
    # a finding of ``ctplhub ledger audit``, which a constraint would only hide.
    Column("event_id", Id64, nullable=False, unique=True),
    Column("entry", LargeBinary, nullable=False),
    Column("salts_enc", LargeBinary, nullable=False),
    Column("hashes", LargeBinary, nullable=False),
)

ledger_tree_heads = Table(
    "ledger_tree_heads",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("kid", String(64), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)

# E-certificates issued (DESIGN §6.1; migration 0007): a certificate shows its policy
# number only masked, so this row leads a check back to the policy, and through the
# policy's head to its vehicle, for the live status.
certificates = Table(
    "certificates",
    metadata,
    Column("cert_id", String(64), primary_key=True),
    Column("insurer_code", String(20), nullable=False),
    Column("policy_no", String(40), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
)

# Reminders (DESIGN §7; migration 0010, docs/reminders-contract.md).
# ``subscriptions``: an owner's (or, with consent, an insurer-given) channel and address
# for one vehicle (its VIN). The address is personal data: sealed like owner fields
# (``address_enc``, associated data ``subscriptions|vin|channel|address``) with a blind
# index (``address_bidx``) to find the same address subscribed again. The unsubscribe
# token is never stored: ``token_salt`` and the deployment's token key make it again for
# each message, and ``token_hash`` (SHA-256) checks the one a caller presents.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("vin", String(17), nullable=False),
    Column("channel", String(8), nullable=False),  # email | sms | webhook
    Column("address_enc", LargeBinary, nullable=False),
    Column("address_bidx", LargeBinary(33), nullable=False),
    Column("language", String(8), nullable=False),  # zh-CN | en
    Column("token_salt", LargeBinary(16), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # owner | insurer_consent
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Index("ix_subscriptions_vin", "vin"),
)

# The transactional outbox: one row per (policy, rule, subscription), written in the
# transaction that decides it. A subscription is one (channel, address) of one vehicle,
# so the key is also the (policy, rule, channel, address). ``last_error`` is a
# short code, never personal data; ``claimed_by``/``claimed_until`` are a worker's lease.
reminders = Table(
    "reminders",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("subscription_id", Id64, ForeignKey("subscriptions.id"), nullable=False),
    Column("insurer_code", String(20), nullable=False),
    Column("policy_no", String(40), nullable=False),
    Column("rule", String(24), nullable=False),  # 16 before 0014
    Column("vin", String(17), nullable=False),
    Column("covered_until", UTCDateTime, nullable=False),
    Column("state", String(10), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(64), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # A dispute's notices (migration 0014): the dispute they tell of, 0 for the others, so
    # that each (dispute, step, subscription) is one row while the policy reminders keep
    # their (policy, rule, subscription) (0 rather than NULL: NULLs never collide in a key).
    Column("dispute_id", BigInteger, nullable=False, default=0, server_default="0"),
    UniqueConstraint(
        "insurer_code",
        "policy_no",
        "rule",
        "subscription_id",
        "dispute_id",
        name="uq_reminders_key",
    ),
    Index("ix_reminders_due", "state", "next_attempt_at"),
    Index("ix_reminders_subscription", "subscription_id"),
)

# Finding due reminders among millions of policies (docs/DECISIONS.md, "Reminders"):
# the policies whose cover ends near the run's instant, and the closed (surrendered or
# cancelled) ones, for ghost-cover alerts.
Index("ix_policies_coverage_end", policies.c.coverage_end)
# Both partial (migration 0013): only surrenders carry ``effective_at``, and only
# surrenders and cancels close a policy; the queries name the same predicates.
POLICY_HAS_EFFECTIVE_AT = text("effective_at IS NOT NULL")
POLICY_IS_CLOSED = text("event_type IN ('surrender', 'cancel')")
Index(
    "ix_policies_effective_at",
    policies.c.effective_at,
    postgresql_where=POLICY_HAS_EFFECTIVE_AT,
    sqlite_where=POLICY_HAS_EFFECTIVE_AT,
)
Index(
    "ix_policies_closed",
    policies.c.event_type,
    policies.c.vin,
    postgresql_where=POLICY_IS_CLOSED,
    sqlite_where=POLICY_IS_CLOSED,
)
# Live confirmation (DESIGN §10; migration 0011): the URL each insurer registered, where
# a police or regulator verify asks it to confirm a "not covered" while its data is stale.
insurer_confirm_endpoints = Table(
    "insurer_confirm_endpoints",
    metadata,
    Column("insurer_code", String(20), ForeignKey("insurers.code"), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Data-quality flags on ingest (issue 10 item 6; migration 0011): accepted events that
# look wrong, listed to their insurer (``services/quality_flags.py``).
quality_flags = Table(
    "quality_flags",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("insurer_code", String(20), nullable=False),
    Column("policy_no", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("flagged_at", UTCDateTime, nullable=False),
    Index("ix_quality_flags_insurer_id", "insurer_code", "id"),
)

# How far the flags pass has read the ledger (migration 0018): one row, ``next_leaf`` the
# index of the next leaf to examine; moved by compare-and-set in the pass's commit.
quality_flag_progress = Table(
    "quality_flag_progress",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("next_leaf", BigInteger, nullable=False),
)

# Sync health and late reports (DESIGN §2.6, §10; migration 0012): events by time of
# receipt, then insurer (store/repositories/insurer_health.py). Time first, so that the
# look-up of an insurer's policies by number keeps the unique key (see the migration).
Index("ix_events_received_insurer", policy_events.c.received_at, policy_events.c.insurer_code)

# Disputes (DESIGN §10; migration 0014): an owner's complaint about a vehicle's data, sent
# to the insurer of the vehicle's latest policy. The owner's message is free text that may
# name people and numbers, so it is sealed like personal fields (``message_enc``,
# associated data ``disputes|<token_hash>|message``). The status token is never stored,
# only its SHA-256 (``token_hash``). The plate is the canonical form the events keep.
disputes = Table(
    "disputes",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("vin", String(17), nullable=False),
    Column("plate", String(16), nullable=False),
    Column("insurer_code", String(20), nullable=False),
    Column("policy_no", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message_enc", LargeBinary, nullable=False),
    Column("status", String(10), nullable=False),
    Column("outcome", String(10), nullable=True),
    Column("token_hash", String(64), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_disputes_insurer_status", "insurer_code", "status", "id"),
    Index("ix_disputes_status_due", "status", "due_at"),
)

# Each step of a dispute, oldest first. Only an insurer's resolution note is written by a
# person (sealed, ``note_enc``, associated data ``disputes|<id>|note``); the opening has
# no note and an escalation's is the registry's fixed text (``domain/disputes.py``).
dispute_history = Table(
    "dispute_history",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("dispute_id", Id64, ForeignKey("disputes.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status", String(10), nullable=False),
    Column("note_enc", LargeBinary, nullable=True),
    Index("ix_dispute_history_dispute", "dispute_id", "id"),
)

# The vehicle register (DESIGN §11; migration 0015): every line the traffic-management
# system fed, kept as history, one per (VIN, as_of). A vehicle's register status at ``t``
# is its line with the latest ``as_of`` up to ``t`` (``domain/register.py``). The VIN and
# the plate stand in clear as in ``policy_events``: they are the vehicle's identity, not
# personal data (tests/leak_scan.py). ``ix_register_region_vin`` serves the uninsured
# list: a region's VINs in order, a page at a time (docs/DECISIONS.md).
# VIN and region in byte order on PostgreSQL too ("C"): the index's order is the list's.
_VIN_C = String(17).with_variant(String(17, collation="C"), "postgresql")
_REGION_C = String(6).with_variant(String(6, collation="C"), "postgresql")
register_lines = Table(
    "register_lines",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("vin", _VIN_C, nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("plate", String(16), nullable=False),
    Column("vehicle_type", String(24), nullable=False),
    Column("region_code", _REGION_C, nullable=False),
    Column("status", String(16), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("vin", "as_of", name="uq_register_lines_vin_as_of"),
    Index("ix_register_region_vin", "region_code", "vin"),
)

# Verify jobs (DESIGN §11; migration 0016; docs/DECISIONS.md "Verify jobs"): a police or
# regulator upload of up to a million rows, cut into chunks at upload. A chunk is the unit
# a runner claims (with a lease) and commits: its answers and the job's ``done_rows`` go in
# one transaction, so a job resumes where it stopped. The rows (plates, VINs) are sealed
# at rest; a chunk's input is deleted once answered.
verify_jobs = Table(
    "verify_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("owner_role", String(16), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("status", String(8), nullable=False),
    Column("total_rows", Integer, nullable=False),
    Column("done_rows", Integer, nullable=False, default=0),
    Column("chunks", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("result_sha256", String(64), nullable=True),
)

verify_job_chunks = Table(
    "verify_job_chunks",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("verify_jobs.id"), nullable=False),
    Column("chunk_no", Integer, nullable=False),
    Column("first_row", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("state", String(8), nullable=False),
    Column("input_enc", LargeBinary, nullable=True),
    Column("result_enc", LargeBinary, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    UniqueConstraint("job_id", "chunk_no", name="uq_verify_job_chunks_job_chunk"),
    Index("ix_verify_job_chunks_state", "state", "id"),
)

# Roadside cameras (DESIGN §12; migration 0017): the alerts raised for uncovered vehicles
# (kept 30 days, ``published_at`` null until the alert reached the broker: the outbox a
# consumer sweeps), and the ids of the reads that raised or could have raised one, so
# that a repeat changes nothing. Nothing of a covered vehicle's read is ever written.
anpr_alerts = Table(
    "anpr_alerts",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("read_id", String(64), nullable=False, unique=True),
    Column("camera_id", String(64), nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("plate", String(16), nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("lapsed_since", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Index("ix_anpr_alerts_region_seen", "region_code", "seen_at"),
    Index("ix_anpr_alerts_plate_region_seen", "plate", "region_code", "seen_at"),
    Index("ix_anpr_alerts_seen_at", "seen_at"),
)
Index(
    "ix_anpr_alerts_unpublished",
    anpr_alerts.c.created_at,
    postgresql_where=anpr_alerts.c.published_at.is_(None),
    sqlite_where=anpr_alerts.c.published_at.is_(None),
)
anpr_reads_seen = Table(
    "anpr_reads_seen",
    metadata,
    Column("read_id", String(64), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
    Index("ix_anpr_reads_seen_seen_at", "seen_at"),
)

# Regulators' statistics (DESIGN §11; migration 0019; docs/DECISIONS.md "Statistics"):
# aggregates refreshed incrementally from the events received since a watermark, never
# on the ingest path. ``stats_policies`` holds each policy's outcome and
# ``stats_vehicles`` each vehicle's last cover end, so a refresh can subtract what a
# recomputed vehicle contributed before; the two count tables are what requests read.
stats_watermark = Table(
    "stats_watermark",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
    Column("refreshed_at", UTCDateTime, nullable=True),
)
stats_policies = Table(
    "stats_policies",
    metadata,
    Column("insurer_code", String(20), primary_key=True),
    Column("policy_no", String(40), primary_key=True),
    Column("vin", String(17), nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("end_day", String(10), nullable=False),
    Column("outcome", String(10), nullable=False),
    Index("ix_stats_policies_vin", "vin"),
)
stats_vehicles = Table(
    "stats_vehicles",
    metadata,
    Column("vin", String(17), primary_key=True),
    Column("last_end", UTCDateTime, nullable=False),
    Column("insurer_code", String(20), nullable=False),
    Column("region_code", String(6), nullable=False),
)
stats_renewals = Table(
    "stats_renewals",
    metadata,
    Column("end_day", String(10), primary_key=True),
    Column("insurer_code", String(20), primary_key=True),
    Column("region_code", String(6), primary_key=True),
    Column("due", Integer, nullable=False),
    Column("on_time", Integer, nullable=False),
    Column("late", Integer, nullable=False),
    Column("unrenewed", Integer, nullable=False),
)
stats_last_cover = Table(
    "stats_last_cover",
    metadata,
    Column("last_end", UTCDateTime, primary_key=True),
    Column("insurer_code", String(20), primary_key=True),
    Column("region_code", String(6), primary_key=True),
    Column("vehicles", Integer, nullable=False),
)

# The scheduled daily match (DESIGN §11; migration 0020): one row per Beijing day, the
# date its key, so that of two workers only the one whose insert won runs the day's
# match; its figures (counts only) for `ctplhub match --status`.
match_runs = Table(
    "match_runs",
    metadata,
    Column("run_date", String(10), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("status", String(8), nullable=False),
    Column("claimed_by", String(64), nullable=False),
    Column("claimed_until", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("uninsured", Integer, nullable=True),
    Column("unmatched", Integer, nullable=True),
    Column("counts", Text, nullable=True),
    Column("error", String(64), nullable=True),
)

# The lapse forecast's daily aggregate (issue 12; migration 0021; docs/DECISIONS.md,
# "Lapse forecast, stored daily"): one run a Beijing day, keyed by its instant (that
# day's 00:00 Beijing), and the sums of its expiring vehicles by group (region,
# province, vehicle type, use nature), key and the day of the window their cover ends
# in, so that a request for any ``days`` is one index range summed. Figures only.
forecast_runs = Table(
    "forecast_runs",
    metadata,
    Column("as_of", UTCDateTime, primary_key=True),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("vehicles", Integer, nullable=False),
)

forecast_totals = Table(
    "forecast_totals",
    metadata,
    Column("as_of", UTCDateTime, primary_key=True),
    Column("group_by", String(16), primary_key=True),
    Column("key", String(24), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("vehicles", Integer, nullable=False),
    Column("risk_sum", Float, nullable=False),
    Column("top_decile", Integer, nullable=False),
)
