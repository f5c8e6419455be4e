"""Scheduled job runs and the notifications outbox.

* ``job_runs``: one row per (job, scope, period): a community's daily points expiry
  of 2026-11-22, the hold timeouts of one minute... The unique key is what makes a
  job run once per period, whichever replica gets there first; ``status`` says
  whether it finished (an interrupted or failed run is taken over by the next tick).
* ``notifications``: reminders for members (points about to expire), one per lot and
  threshold, and their webhook delivery state. A delivered notification stays
  delivered (guard trigger).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from timebank.migrations.helpers import run_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE job_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text NOT NULL CHECK (char_length(job) BETWEEN 1 AND 100),
    scope        text NOT NULL,   -- a community id, or 'all'
    period       text NOT NULL,   -- '2026-11-22' (a local day), '2026-11-22T08:15Z' (a minute)
    status       text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    counts       jsonb NOT NULL DEFAULT '{}',
    error        text,
    UNIQUE (job, scope, period),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX job_runs_recent ON job_runs (scope, started_at DESC);
CREATE INDEX job_runs_job ON job_runs (job, started_at DESC);

CREATE TABLE notifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id    uuid NOT NULL REFERENCES communities (id),
    member_id       uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('points_expiring')),
    lot_id          uuid REFERENCES points_lots (id),
    threshold_days  integer,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    UNIQUE (lot_id, threshold_days),
    FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)
);
CREATE INDEX notifications_member ON notifications (member_id, created_at DESC, id);
CREATE INDEX notifications_undelivered ON notifications (community_id, next_attempt_at) WHERE delivered_at IS NULL;

CREATE FUNCTION notification_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'notifications are never deleted' USING ERRCODE = 'TB001';
    END IF;
    IF OLD.delivered_at IS NOT NULL
       OR (NEW.id, NEW.community_id, NEW.member_id, NEW.kind, NEW.lot_id, NEW.threshold_days, NEW.payload,
           NEW.created_at) IS DISTINCT FROM
          (OLD.id, OLD.community_id, OLD.member_id, OLD.kind, OLD.lot_id, OLD.threshold_days, OLD.payload,
           OLD.created_at) THEN
        RAISE EXCEPTION 'notification % was delivered or is being changed: it does not change', OLD.id
            USING ERRCODE = 'TB001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notifications_guard BEFORE UPDATE OR DELETE ON notifications
    FOR EACH ROW EXECUTE FUNCTION notification_guard();
"""

DROP = r"""
DROP TABLE IF EXISTS notifications, job_runs;
DROP FUNCTION IF EXISTS notification_guard;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
