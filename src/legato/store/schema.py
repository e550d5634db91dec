"""The store's tables, as SQLAlchemy Core objects.

Core rather than the ORM because the driver writes once per step and that path must stay cheap.
Column order in each table equals the field order of its record class in ``records.py`` so that
a row converts to a record positionally (``tests/store`` checks this).

This module describes the *current* schema for queries. The migrations in ``migrations/versions``
create it; they spell the tables out again on purpose, so that later edits here never rewrite
history. A test compares the two.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = String(32)  # run ids: 20 hex chars from new_run_id(), with room for other schemes
STATE = String(20)  # RunState / TaskState values


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned as an aware UTC ``datetime``.

    Naive storage keeps SQLite (text) and PostgreSQL (``timestamp without time zone``) identical
    and sortable; rejecting naive input stops local times sneaking in as if they were UTC.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the store; "
                "pass a timezone-aware datetime (e.g. datetime.now(UTC))"
            )
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline", String, nullable=False),
    Column("state", STATE, nullable=False),
    Column("params", Text, nullable=False),  # JSON text; we (de)serialise ourselves
    Column("partition", String, nullable=True),
    Column("code_version", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # No foreign key: deleting an old parent run must not be blocked by its re-runs.
    Column("parent_run_id", ID),
    Column("rerun_kind", String),
    Column("lease_owner", String),
    Column("lease_expires_at", UTCDateTime),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("error", Text),
    Column("run_key", String, nullable=True, unique=True),
    # Queue order: higher priority first, then lower position (creation time in microseconds,
    # or a value an operator chose with `legato queue move`).
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("queue_position", BigInteger, nullable=False, server_default="0"),
    Column("origin", String),  # "manual" | "schedule:<name>" | "trigger:<name>" | "backfill:<id>"
    Column("backfill_id", ID),
    # The environment the run was made in ([env.NAME] of legato.toml); None: made before
    # environments were recorded.
    Column("environment", String),
    Index("ix_runs_pipeline_created_at", "pipeline", "created_at"),
    Index("ix_runs_state_priority_queue_position", "state", "priority", "queue_position"),
    Index("ix_runs_pipeline_partition", "pipeline", "partition"),
    Index("ix_runs_backfill_id", "backfill_id"),
    Index("ix_runs_created_at", "created_at"),
    # The runs list pages newest first by id within a pipeline or a state (API and UI).
    Index("ix_runs_pipeline_id", "pipeline", "id"),
    Index("ix_runs_state_id", "state", "id"),
    # ... and within a pipeline and a state, or a partition (bench/api.py).
    Index("ix_runs_pipeline_state_id", "pipeline", "state", "id"),
    Index("ix_runs_partition_id", "partition", "id"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_key", String, primary_key=True),
    Column("node", String, nullable=False),
    Column("map_index", Integer),
    Column("state", STATE, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime),
    Column("result_uri", Text),
    Column("result_format", String),
    Column("item_count", Integer),
    Column("reused_from", ID),
    Column("error", Text),
    Column("worker", String),
    Column("result_note", Text),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("task_key", String, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("outcome", String, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("error", Text),
    Column("traceback", Text),
    Column("log_path", Text),
    Column("worker", String),
    ForeignKeyConstraint(
        ["run_id", "task_key"],
        ["task_runs.run_id", "task_runs.task_key"],
        ondelete="CASCADE",
        name="fk_attempts_task_runs",
    ),
)

events = Table(
    "events",
    metadata,
    # BIGINT on PostgreSQL; plain INTEGER on SQLite so the column aliases the rowid and
    # ids are assigned by SQLite itself in insertion order.
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("task_key", String),
    Column("kind", String, nullable=False),
    Column("old_state", STATE),
    Column("new_state", STATE),
    Column("at", UTCDateTime, nullable=False),
    Column("message", Text),
    Index("ix_events_run_id_id", "run_id", "id"),
    # Upstream-success triggers scan "run_state -> succeeded" events after their cursor.
    Index("ix_events_kind_new_state_id", "kind", "new_state", "id"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("pipeline", String, primary_key=True),
    Column("code_version", String, primary_key=True),
    Column("snapshot", Text, nullable=False),  # JSON text
    Column("created_at", UTCDateTime, nullable=False),
)

# The text of the project's source files by sha256 (the code versions' file lists in the
# snapshots name them), so that what changed between two runs' code can be shown.
code_texts = Table(
    "code_texts",
    metadata,
    Column("sha256", String, primary_key=True),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# What the last load of each project (code location) found: its pipelines and the modules
# that failed to import, so every front end can show load errors without importing the code.
code_locations = Table(
    "code_locations",
    metadata,
    Column("name", String, primary_key=True),
    Column("root", Text, nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("pipelines", Text, nullable=False),  # JSON: {name: code_version}
    Column("errors", Text, nullable=False),  # JSON: [{module, message, traceback}]
)


# -- automation: schedules, triggers, backfills, pools ---------------------------------------

schedule_states = Table(
    "schedule_states",
    metadata,
    Column("pipeline", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("cursor", UTCDateTime),  # the last tick handled; None until the first tick
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("updated_at", UTCDateTime, nullable=False),
)

trigger_states = Table(
    "trigger_states",
    metadata,
    Column("pipeline", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("cursor", Text),  # JSON, kind-specific: the last upstream event id, ...
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("token", String),  # webhook secret
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per event a trigger has seen (a message, a file, a webhook call, an upstream
# success): the unique key is what makes a redelivered event a no-op.
trigger_events = Table(
    "trigger_events",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("pipeline", String, nullable=False),
    Column("trigger", String, nullable=False),
    Column("event_key", String, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),  # "run_created" | "failed"
    Column("run_id", ID),
    Column("message", Text),
    Index(
        "uq_trigger_events_pipeline_trigger_event_key",
        "pipeline",
        "trigger",
        "event_key",
        unique=True,
    ),
)

backfills = Table(
    "backfills",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline", String, nullable=False),
    Column("state", STATE, nullable=False),  # BackfillState
    # JSON list: a named partition key, or [first, last, start, stop] for keys start..stop-1
    # of the range first..last (legato.domain.backfill_keys), in the order runs are made.
    Column("keys", Text, nullable=False),
    Column("next_index", Integer, nullable=False),  # the first next_index keys have runs
    Column("max_concurrent", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("message", Text),
)

# The state of each partition of a pipeline: its newest run's (the greatest run id), kept in
# the transaction that creates the run or changes its state, so that a page of partitions and
# their counts by state never group all of a pipeline's runs (issue 18: 10^6 runs).
partition_status = Table(
    "partition_status",
    metadata,
    Column("pipeline", String, primary_key=True),
    Column("partition", String, primary_key=True),
    Column("run_id", ID, nullable=False),
    Column("state", STATE, nullable=False),  # RunState of run_id
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_partition_status_pipeline_state_partition", "pipeline", "state", "partition"),
)

pool_claims = Table(
    "pool_claims",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("task_key", String, primary_key=True),
    Column("pool", String, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Index("ix_pool_claims_pool", "pool"),
)

# One row per pool: the row a claimer locks, so that counting and claiming are one step.
pools = Table(
    "pools",
    metadata,
    Column("name", String, primary_key=True),
    Column("slots", Integer, nullable=False),
)


# Each running daemon (`legato up`, `legato scheduler`) and its last sign of life, so every
# front end can tell whether anything will start the runs it queues.
daemons = Table(
    "daemons",
    metadata,
    Column("id", String, primary_key=True),  # the owner id it takes leases with
    Column("kind", String, nullable=False),  # "up" | "scheduler"
    Column("host", String, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String, nullable=False),
    Column("url", String),  # where its HTTP server answers, when it has one
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)


# -- security: users, sign-in, API tokens, secrets, the audit trail ---------------------------
# Column order follows the records of ``legato.domain.access``. No secret is stored in a form
# that works if the store leaks: session ids and token secrets as SHA-256, passwords as
# Argon2id, secret values sealed with the key ring.

HASH = String(64)  # SHA-256 hex

users = Table(
    "users",
    metadata,
    Column("name", String, primary_key=True),
    Column("role", String, nullable=False),
    Column("password_hash", Text),  # Argon2id; None for single sign-on users
    Column("source", String(20), nullable=False),  # "local" | "oidc" | "saml"
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("scope", Text, nullable=False),  # JSON list of pipeline patterns; [] = all
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_sign_in_at", UTCDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_hash", HASH, primary_key=True),
    Column("user_name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("csrf", String, nullable=False),
    Column("method", String(20), nullable=False),
    Column("source", String, nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("ix_sessions_user_name", "user_name"),
    Index("ix_sessions_expires_at", "expires_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String, nullable=False),
    Column("secret_hash", HASH, nullable=False),
    Column("role", String, nullable=False),
    Column("scope", Text, nullable=False),  # JSON list, as users.scope
    Column("created_by", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    # Names are unique among live tokens only: see declare_partial_indexes.
)


def declare_partial_indexes() -> None:
    """Add the indexes with a WHERE clause to ``metadata`` (once; later calls do nothing).

    Their options (``sqlite_where``, ``postgresql_where``) make SQLAlchemy import each
    dialect they name: PostgreSQL's costs ~18 ms on every command of a SQLite store. The
    store's statements never need them and the migrations create them, so only what compares
    ``metadata`` with a database (the migrations' environment, the schema tests) declares
    them."""
    if any(i.name == "uq_api_tokens_name" for i in api_tokens.indexes):
        return
    # A revoked token's name may be used again.
    Index(
        "uq_api_tokens_name",
        api_tokens.c.name,
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    )
    # Retention keeps a run whose results a re-run reuses: a few rows among many, and no
    # cost to the insert of every task run that reuses nothing.
    Index(
        "ix_task_runs_reused_from",
        task_runs.c.reused_from,
        sqlite_where=text("reused_from IS NOT NULL"),
        postgresql_where=text("reused_from IS NOT NULL"),
    )

# Failed sign-ins per name: the times of the recent ones (a sliding window) and the lockout
# they led to, in the store so that every web process agrees.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("name", String, primary_key=True),
    Column("failures", Text, nullable=False),  # JSON list of ISO UTC times, oldest first
    Column("locked_until", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One-time sign-in links (the URL `legato up` prints), by the SHA-256 of their token.
sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("link_hash", HASH, primary_key=True),
    Column("user_name", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Single sign-on under way: what a sign-in begun at an identity provider needs when the
# browser comes back (OIDC state, nonce and PKCE verifier; a SAML request id), by the SHA-256
# of the key the browser carries, and bound to that browser by the SHA-256 of a cookie. Each
# is taken once; several web processes share them.
sign_in_states = Table(
    "sign_in_states",
    metadata,
    Column("state_hash", HASH, primary_key=True),
    Column("kind", String(20), nullable=False),  # "oidc" | "saml" | "saml-done"
    Column("browser_hash", HASH, nullable=False),
    Column("data", Text, nullable=False),  # JSON object
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_sign_in_states_expires_at", "expires_at"),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String, primary_key=True),
    Column("sealed", Text, nullable=False),  # the key ring's v1.ID.DATA
    Column("key_id", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String, nullable=False),
    Column("sealed_at", UTCDateTime, nullable=False),
    Index("ix_secrets_key_id", "key_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Assigned by the store, 1, 2, 3... without gaps (a gap is a removed row); on SQLite an
    # INTEGER key aliases the rowid.
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String, nullable=False),
    Column("auth", String, nullable=False),
    Column("source", String, nullable=False),
    Column("action", String, nullable=False),
    Column("target", Text),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text, nullable=False),  # JSON object
    Column("prev_hash", HASH, nullable=False),
    Column("hash", HASH, nullable=False),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_seq", "actor", "seq"),
    Index("ix_audit_log_action_seq", "action", "seq"),
)

# The chain's head: one row (id 1) with the last seq and hash. Appenders lock it, which
# serialises them on PostgreSQL; and a check compares it with the last row, so removing rows
# from the end of the log shows too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", HASH, nullable=False),
    # Where the kept rows begin: the seq and hash of the last row retention removed (0 and
    # the genesis hash while none was), recorded again in the chained row of that prune.
    Column("tail_seq", BigInteger, nullable=False, server_default="0"),
    Column("tail_hash", HASH, nullable=False, server_default="0" * 64),
)


# -- alerts: the outbox of facts, alerts by (rule, subject), deliveries, silences ------------
# Facts are written in the transaction of the state change that raised them (a run finished,
# a task failed for good, a backfill completed); the alert evaluator consumes them.

BIG_ID = BigInteger().with_variant(Integer, "sqlite")  # an INTEGER key aliases SQLite's rowid

alert_facts = Table(
    "alert_facts",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),  # run_failed, task_failed, run_succeeded...
    Column("pipeline", String, nullable=False),
    Column("run_id", ID),
    Column("task_key", String),
    Column("partition", String),
    Column("backfill_id", String),
    Column("message", Text),
    Column("at", UTCDateTime, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("rule", String, nullable=False),
    Column("subject", String, nullable=False),  # what it is about: a run, a partition...
    Column("condition", String(40), nullable=False),
    Column("state", STATE, nullable=False),  # open | resolved | done (nothing to resolve)
    Column("pipeline", String),
    Column("run_id", ID),
    Column("title", Text, nullable=False),
    Column("notice", Text, nullable=False),  # the trigger Notice as JSON
    Column("opened_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("notified", Boolean, nullable=False),  # its trigger was sent (alone or grouped)
    Column("silenced", Boolean, nullable=False),  # raised while its rule was silenced
    Index("ix_alerts_rule_subject_state", "rule", "subject", "state"),
    Index("ix_alerts_state_rule", "state", "rule"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger),  # None for a group or a test
    Column("rule", String, nullable=False),
    Column("channel", String, nullable=False),
    Column("kind", String(20), nullable=False),  # trigger | resolve | group | test
    Column("notice", Text, nullable=False),  # JSON
    Column("state", STATE, nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_try_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_alert_deliveries_state_next_try_at", "state", "next_try_at"),
    Index("ix_alert_deliveries_alert_id", "alert_id"),
)

# A rule's storm window: alerts raised before ``until`` wait to go out as one group message.
alert_windows = Table(
    "alert_windows",
    metadata,
    Column("rule", String, primary_key=True),
    Column("until", UTCDateTime, nullable=False),
)

alert_silences = Table(
    "alert_silences",
    metadata,
    Column("rule", String, primary_key=True),
    Column("until", UTCDateTime, nullable=False),
    Column("by", String, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Facts about the store itself, e.g. "environment": the one environment it belongs to.
store_facts = Table(
    "store_facts",
    metadata,
    Column("name", String, primary_key=True),
    Column("value", Text, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
)

# The window an incremental extract read: per partition ("partition:KEY") or, for a pipeline
# without partitions, per run ("run:ID"), so that a re-run reads the same rows. low and high
# are JSON; the newest high of a pipeline and name is where the next new window starts.
cursor_windows = Table(
    "cursor_windows",
    metadata,
    Column("pipeline", String, primary_key=True),
    Column("name", String, primary_key=True),
    Column("scope", String, primary_key=True),
    Column("low", Text),
    Column("high", Text),
    Column("run_id", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_cursor_windows_pipeline_name_created_at", "pipeline", "name", "created_at"),
)

_SERIAL = BigInteger().with_variant(Integer, "sqlite")

# One row per materialization of an asset: the successful attempt of a task that produces
# it, for a partition (None: the asset has none), with its metadata as JSON (row count,
# columns and types, size, a preview, what the task added).
materializations = Table(
    "materializations",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("asset", String, nullable=False),
    Column("partition", String),
    Column("pipeline", String, nullable=False),
    Column("run_id", ID, nullable=False),
    Column("task_key", String, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("metadata", Text, nullable=False),
    Index("ix_materializations_asset_id", "asset", "id"),
    Index("ix_materializations_asset_partition_id", "asset", "partition", "id"),
    Index("ix_materializations_run_id", "run_id"),
)

# Each data-quality check's result: outcome "passed" | "failed" | "error", how many rows
# failed of how many, a sample of them (JSON) and a message.
check_results = Table(
    "check_results",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("check_name", String, nullable=False),
    Column("asset", String),
    Column("pipeline", String, nullable=False),
    Column("run_id", ID, nullable=False),
    Column("task_key", String, nullable=False),
    Column("partition", String),
    Column("severity", String(10), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("failed_count", BigInteger),
    Column("total_count", BigInteger),
    Column("sample", Text),
    Column("message", Text),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_check_results_asset_check_name_id", "asset", "check_name", "id"),
    Index("ix_check_results_run_id", "run_id"),
)

# The outbox of OpenLineage run events: written with the state change they tell of, then
# delivered with retries by whoever holds the row's lease ("pending" | "sent" | "failed").
lineage_events = Table(
    "lineage_events",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("run_id", ID, nullable=False),
    Column("event_type", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(10), nullable=False),
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String),
    Column("lease_until", UTCDateTime),
    Index("ix_lineage_events_state_next_at", "state", "next_at"),
)
