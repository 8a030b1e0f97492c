"""Initial schema: organisation, patients, the append-only event stream, derived state, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

The event tables (``clinical_event``, ``assessment``, ``audit_event``) get triggers that refuse
UPDATE and DELETE on both SQLite and PostgreSQL: corrections are new rows that supersede.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_ = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("clinical_event", "assessment", "audit_event")


def _append_only_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION immunotox_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION immunotox_refuse_change()"
            )


def _drop_append_only_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    elif bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS immunotox_refuse_change()")


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=True),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.Column("details", JSON_, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_event_patient_at", ["patient_id", "at"], unique=False)

    op.create_table(
        "care_unit",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_unit")),
    )
    op.create_table(
        "patient",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=16), nullable=True),
        sa.Column("therapy_class", sa.String(length=32), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=True),
        sa.Column("indication", sa.String(length=64), nullable=True),
        sa.Column("indication_text", sa.String(length=200), nullable=True),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("infusion_at", TS, nullable=True),
        sa.Column("pathway_phase", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["care_unit.id"], name=op.f("fk_patient_unit_id_care_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient")),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_app_user_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_table(
        "episode",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("onset_at", TS, nullable=False),
        sa.Column("peak_grade", sa.Integer(), nullable=False),
        sa.Column("peak_at", TS, nullable=False),
        sa.Column("last_positive_at", TS, nullable=False),
        sa.Column("quiet_since", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_episode_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episode")),
    )
    with op.batch_alter_table("episode", schema=None) as batch_op:
        batch_op.create_index("ix_episode_patient_scale", ["patient_id", "scale"], unique=False)

    op.create_table(
        "alert",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("episode_id", BIGID, nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("title_fr", sa.String(length=300), nullable=False),
        sa.Column("message_fr", sa.Text(), nullable=False),
        sa.Column("params", JSON_, nullable=False),
        sa.Column("recommendation", JSON_, nullable=True),
        sa.Column("target_role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("triggered_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["app_user.id"], name=op.f("fk_alert_acknowledged_by_app_user")
        ),
        sa.ForeignKeyConstraint(["episode_id"], ["episode.id"], name=op.f("fk_alert_episode_id_episode")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_alert_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alert_dedup_key")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_alert_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "assessment",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_assessment_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_assessment_recorded_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment")),
    )
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessment_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "auth_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("csrf_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_auth_token_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_token_token_hash")),
    )
    op.create_table(
        "grade_record",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("grade_lo", sa.Integer(), nullable=False),
        sa.Column("grade_hi", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("missing", JSON_, nullable=False),
        sa.Column("result", JSON_, nullable=False),
        sa.Column("inputs", JSON_, nullable=False),
        sa.Column("engine", sa.String(length=40), nullable=False),
        sa.Column("episode_id", BIGID, nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episode.id"], name=op.f("fk_grade_record_episode_id_episode")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_grade_record_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grade_record")),
    )
    with op.batch_alter_table("grade_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_grade_record_patient_scale_time", ["patient_id", "scale", "time"], unique=False
        )

    op.create_table(
        "idempotency_record",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_idempotency_record_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_record_user_key"),
    )
    op.create_table(
        "user_unit",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["care_unit.id"], name=op.f("fk_user_unit_unit_id_care_unit")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_user_unit_user_id_app_user")),
        sa.PrimaryKeyConstraint("user_id", "unit_id", name=op.f("pk_user_unit")),
    )
    op.create_table(
        "clinical_event",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("end_time", TS, nullable=True),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("value_num", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("dose", sa.Float(), nullable=True),
        sa.Column("dose_unit", sa.String(length=32), nullable=True),
        sa.Column("source_value", sa.String(length=200), nullable=True),
        sa.Column("source_unit", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("supersedes_id", BIGID, nullable=True),
        sa.Column("assessment_id", BIGID, nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["assessment.id"], name=op.f("fk_clinical_event_assessment_id_assessment")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_clinical_event_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["app_user.id"], name=op.f("fk_clinical_event_recorded_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["clinical_event.id"],
            name=op.f("fk_clinical_event_supersedes_id_clinical_event"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinical_event")),
        sa.UniqueConstraint("patient_id", "external_id", name="uq_clinical_event_patient_external"),
        sa.UniqueConstraint("supersedes_id", name=op.f("uq_clinical_event_supersedes_id")),
    )
    with op.batch_alter_table("clinical_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clinical_event_patient_code_time", ["patient_id", "code", "time"], unique=False
        )
        batch_op.create_index("ix_clinical_event_patient_time", ["patient_id", "time"], unique=False)

    op.create_table(
        "current_grade",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("grade_lo", sa.Integer(), nullable=False),
        sa.Column("grade_hi", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("missing", JSON_, nullable=False),
        sa.Column("engine", sa.String(length=40), nullable=False),
        sa.Column("episode_id", BIGID, nullable=True),
        sa.Column("grade_record_id", BIGID, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("clinical", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episode.id"], name=op.f("fk_current_grade_episode_id_episode")
        ),
        sa.ForeignKeyConstraint(
            ["grade_record_id"],
            ["grade_record.id"],
            name=op.f("fk_current_grade_grade_record_id_grade_record"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_current_grade_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("patient_id", "scale", name=op.f("pk_current_grade")),
    )
    op.create_table(
        "regrade_queue",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("latest", TS, nullable=True),
        sa.Column("interval_start", TS, nullable=True),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_regrade_queue_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("patient_id", "scale", name=op.f("pk_regrade_queue")),
    )
    _append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("regrade_queue")
    op.drop_table("current_grade")
    with op.batch_alter_table("clinical_event", schema=None) as batch_op:
        batch_op.drop_index("ix_clinical_event_patient_time")
        batch_op.drop_index("ix_clinical_event_patient_code_time")

    op.drop_table("clinical_event")
    op.drop_table("user_unit")
    op.drop_table("idempotency_record")
    with op.batch_alter_table("grade_record", schema=None) as batch_op:
        batch_op.drop_index("ix_grade_record_patient_scale_time")

    op.drop_table("grade_record")
    op.drop_table("auth_token")
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_patient_id"))

    op.drop_table("assessment")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_status_created")
        batch_op.drop_index(batch_op.f("ix_alert_patient_id"))

    op.drop_table("alert")
    with op.batch_alter_table("episode", schema=None) as batch_op:
        batch_op.drop_index("ix_episode_patient_scale")

    op.drop_table("episode")
    op.drop_table("app_user")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_unit_id"))

    op.drop_table("patient")
    op.drop_table("care_unit")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_patient_at")
        batch_op.drop_index("ix_audit_event_at")

    op.drop_table("audit_event")
