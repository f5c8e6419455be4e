"""Volunteer service records, community policy versions, points lots, corrections.

* ``community_policies``: every version of a community's policy, append-only; the
  current one is the highest version.
* ``service_records``: one row per recorded service (志愿服务记录). Its status moves
  submitted → approved | rejected, and approved → reversed (a correction); rows are
  never deleted. The minutes, times and parties of a record never change.
* ``service_reversals``: the four-eyes correction of an approved record; the database
  refuses a decision by the key that asked for it.
* ``points_lots``: the points credited by one approval, with their expiry time.
* ``certificates``: every certificate of service issued (志愿服务证明), as signed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from timebank.migrations.helpers import run_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE community_policies (
    community_id uuid NOT NULL REFERENCES communities (id),
    version      integer NOT NULL CHECK (version >= 1),
    policy       jsonb NOT NULL,
    changed_by   uuid,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, version)
);
CREATE TRIGGER community_policies_append_only BEFORE UPDATE OR DELETE ON community_policies
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TABLE service_records (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id    uuid NOT NULL,
    member_id       uuid NOT NULL,
    organisation_id uuid NOT NULL,
    activity        text NOT NULL CHECK (char_length(activity) BETWEEN 1 AND 200),
    category        text NOT NULL CHECK (char_length(category) BETWEEN 1 AND 100),
    place           text NOT NULL CHECK (char_length(place) BETWEEN 1 AND 200),
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz NOT NULL,
    minutes         integer NOT NULL CHECK (minutes > 0),
    beneficiary     text CHECK (char_length(beneficiary) <= 200),
    content         text CHECK (char_length(content) <= 2000),
    external_ref    text CHECK (char_length(external_ref) BETWEEN 1 AND 200),
    recorded_by     uuid,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'submitted'
                    CHECK (status IN ('submitted', 'approved', 'rejected', 'reversed')),
    decided_by      uuid,
    decided_at      timestamptz,
    reject_reason   text CHECK (char_length(reject_reason) <= 500),
    policy_version  integer,
    points          bigint CHECK (points >= 0),
    transaction_id  uuid UNIQUE,
    CHECK (ended_at > started_at),
    CHECK ((status IN ('approved', 'reversed')) = (transaction_id IS NOT NULL)),
    CHECK ((status = 'rejected') = (reject_reason IS NOT NULL)),
    FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id),
    FOREIGN KEY (organisation_id, community_id) REFERENCES parties (id, community_id)
);
CREATE UNIQUE INDEX service_records_external_ref ON service_records (organisation_id, external_ref)
    WHERE external_ref IS NOT NULL;
CREATE INDEX service_records_member_time ON service_records (member_id, started_at);
CREATE INDEX service_records_community ON service_records (community_id, recorded_at, id);

-- What a record is never changes; only its status moves, and only forward.
CREATE FUNCTION service_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'service records are never deleted' USING ERRCODE = 'TB001';
    END IF;
    IF (NEW.id, NEW.community_id, NEW.member_id, NEW.organisation_id, NEW.activity, NEW.category, NEW.place,
        NEW.started_at, NEW.ended_at, NEW.minutes, NEW.beneficiary, NEW.content, NEW.external_ref,
        NEW.recorded_by, NEW.recorded_at)
       IS DISTINCT FROM
       (OLD.id, OLD.community_id, OLD.member_id, OLD.organisation_id, OLD.activity, OLD.category, OLD.place,
        OLD.started_at, OLD.ended_at, OLD.minutes, OLD.beneficiary, OLD.content, OLD.external_ref,
        OLD.recorded_by, OLD.recorded_at) THEN
        RAISE EXCEPTION 'a service record is corrected by a reversal and a new record, not edited'
            USING ERRCODE = 'TB001';
    END IF;
    IF NOT ((OLD.status = 'submitted' AND NEW.status IN ('approved', 'rejected'))
            OR (OLD.status = 'approved' AND NEW.status = 'reversed')) THEN
        RAISE EXCEPTION 'service record % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'TB001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER service_records_guard BEFORE UPDATE OR DELETE ON service_records
    FOR EACH ROW EXECUTE FUNCTION service_record_guard();
CREATE TRIGGER service_records_no_truncate BEFORE TRUNCATE ON service_records
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

CREATE TABLE service_reversals (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id   uuid NOT NULL,
    record_id      uuid NOT NULL REFERENCES service_records (id),
    reason         text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    requested_by   uuid NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'approved', 'rejected')),
    decided_by     uuid,
    decided_at     timestamptz,
    transaction_id uuid UNIQUE,
    CONSTRAINT four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK ((status = 'requested') = (decided_by IS NULL)),
    CHECK ((status = 'approved') = (transaction_id IS NOT NULL))
);
CREATE UNIQUE INDEX service_reversals_one_open ON service_reversals (record_id) WHERE status = 'requested';
CREATE UNIQUE INDEX service_reversals_one_approved ON service_reversals (record_id) WHERE status = 'approved';
CREATE TRIGGER service_reversals_no_delete BEFORE DELETE ON service_reversals
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TABLE points_lots (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id   uuid NOT NULL,
    member_id      uuid NOT NULL,
    account_id     uuid NOT NULL,
    transaction_id uuid NOT NULL UNIQUE,
    record_id      uuid REFERENCES service_records (id),
    points         bigint NOT NULL CHECK (points > 0),
    credited_at    timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    reversed_at    timestamptz,
    CHECK (expires_at > credited_at)
);
CREATE INDEX points_lots_account ON points_lots (account_id, expires_at);
CREATE INDEX points_lots_expiry ON points_lots (community_id, expires_at);
CREATE TRIGGER points_lots_no_delete BEFORE DELETE ON points_lots
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

-- 志愿服务证明: every certificate issued, as signed; verifiable by its number.
CREATE TABLE certificates (
    number        text PRIMARY KEY,
    community_id  uuid NOT NULL,
    member_id     uuid NOT NULL,
    period_from   date NOT NULL,
    period_to     date NOT NULL,
    content_hash  bytea NOT NULL,
    document      jsonb NOT NULL,
    kid           text NOT NULL,
    signature     text NOT NULL,
    issued_by     uuid,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (period_to >= period_from),
    UNIQUE (member_id, content_hash)
);
CREATE TRIGGER certificates_append_only BEFORE UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
"""

DROP = r"""
DROP TABLE IF EXISTS certificates, points_lots, service_reversals, service_records, community_policies;
DROP FUNCTION IF EXISTS service_record_guard;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
