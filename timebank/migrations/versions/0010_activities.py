"""Activities: publish, sign up, check in and out; back-filled service records.

* ``activities``: an activity an organisation (or the community's staff) publishes,
  with its place (optionally a point and a radius), time, capacity and sign-up window.
  Cancelled with a reason, never deleted.
* ``activity_signups``: one row per volunteer and activity: signed up or waiting (in
  ``position`` order), withdrawn (late: a no-show); the attendance (check-in and
  check-out times, manual or scanned) and the service record made at check-out
  (``record_id``: at most one per row, and the record's external_ref
  ``activity:{activity}:{member}`` is unique per organisation too).
* ``service_records.source``: where a record came from. Only ``activity`` records were
  witnessed by a check-in; the others are back-filled (补录), which the policy may
  credit with hours but no points.
* ``notifications.kind`` takes the activities' notices.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from timebank.migrations.helpers import run_script

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE service_records ADD COLUMN source text NOT NULL DEFAULT 'entered'
    CHECK (source IN ('activity', 'entered', 'import'));
-- Where a record came from never changes either (it decides its points): the guard of 0003, with source.
CREATE OR REPLACE FUNCTION service_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'service records are never deleted' USING ERRCODE = 'TB001';
    END IF;
    IF (NEW.id, NEW.community_id, NEW.member_id, NEW.organisation_id, NEW.activity, NEW.category, NEW.place,
        NEW.started_at, NEW.ended_at, NEW.minutes, NEW.beneficiary, NEW.content, NEW.external_ref,
        NEW.recorded_by, NEW.recorded_at, NEW.source)
       IS DISTINCT FROM
       (OLD.id, OLD.community_id, OLD.member_id, OLD.organisation_id, OLD.activity, OLD.category, OLD.place,
        OLD.started_at, OLD.ended_at, OLD.minutes, OLD.beneficiary, OLD.content, OLD.external_ref,
        OLD.recorded_by, OLD.recorded_at, OLD.source) THEN
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

ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('points_expiring', 'activity_cancelled', 'activity_promoted', 'activity_reminder'));

CREATE TABLE activities (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id     uuid NOT NULL REFERENCES communities (id),
    organisation_id  uuid,
    title            text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    category         text NOT NULL CHECK (char_length(category) BETWEEN 1 AND 100),
    description      text CHECK (char_length(description) <= 2000),
    place            text NOT NULL CHECK (char_length(place) BETWEEN 1 AND 200),
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    radius_m         integer CHECK (radius_m BETWEEN 1 AND 100000),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    capacity         integer NOT NULL CHECK (capacity BETWEEN 1 AND 100000),
    signup_opens_at  timestamptz,
    signup_closes_at timestamptz,
    min_star         integer CHECK (min_star BETWEEN 0 AND 5),
    status           text NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'cancelled')),
    cancel_reason    text CHECK (char_length(cancel_reason) <= 500),
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK ((lat IS NULL) = (lon IS NULL)),
    CHECK (radius_m IS NULL OR lat IS NOT NULL),
    CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL)),
    FOREIGN KEY (organisation_id, community_id) REFERENCES parties (id, community_id)
);
CREATE INDEX activities_community_start ON activities (community_id, starts_at, id);

CREATE TABLE activity_signups (
    activity_id      uuid NOT NULL REFERENCES activities (id),
    member_id        uuid NOT NULL,
    community_id     uuid NOT NULL,
    status           text NOT NULL CHECK (status IN ('signed_up', 'waiting', 'withdrawn')),
    position         integer NOT NULL CHECK (position >= 1),
    signed_up_at     timestamptz NOT NULL DEFAULT now(),
    withdrawn_at     timestamptz,
    late_withdrawal  boolean NOT NULL DEFAULT false,
    checked_in_at    timestamptz,
    check_in_manual  boolean NOT NULL DEFAULT false,
    checked_out_at   timestamptz,
    check_out_manual boolean NOT NULL DEFAULT false,
    record_id        uuid UNIQUE REFERENCES service_records (id),
    reminded_at      timestamptz,
    PRIMARY KEY (activity_id, member_id),
    CHECK (checked_out_at IS NULL OR checked_in_at IS NOT NULL),
    CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL)),
    FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)
);
CREATE INDEX activity_signups_member ON activity_signups (member_id);
"""

DROP = r"""
DROP TABLE IF EXISTS activity_signups;
DROP TABLE IF EXISTS activities;
-- notifications are never deleted (guard trigger): activities' notices stay, unchecked.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('points_expiring')) NOT VALID;
CREATE OR REPLACE FUNCTION service_record_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
ALTER TABLE service_records DROP COLUMN IF EXISTS source;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
