"""People who sign in to the pages: their accounts, one-time sign-in links, sessions.

A person acts in one community with one role, exactly like an API key (the same
``role``/``subject_id`` rule), so ``security.authorize`` decides for both. Secrets are
never stored: passwords as argon2id hashes, sign-in links and session cookies as the
SHA-256 of 32 random bytes.

* ``people.login`` is a phone number or a user name, unique in the deployment
  (compared in its normalised form: lower case, no spaces or dashes); people who only
  ever use a sign-in link have none.
* ``failed_sign_ins`` / ``failed_since``: the per-account limit on wrong passwords
  holds across every service process (the per-address limit is in memory).
* A sign-in link is used once (``used_at``), until ``expires_at``, unless revoked.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from timebank.migrations.helpers import run_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE people (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id     uuid NOT NULL REFERENCES communities(id),
    role             text NOT NULL CHECK (role IN ('admin', 'recorder', 'merchant', 'resident', 'auditor')),
    subject_id       uuid REFERENCES parties(id),
    display_name     text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    login            text UNIQUE CHECK (login IS NULL OR length(login) BETWEEN 3 AND 64),
    password_hash    text,
    locale           text CHECK (locale IS NULL OR locale IN ('zh_CN', 'en')),
    large_text       boolean NOT NULL DEFAULT false,
    failed_sign_ins  integer NOT NULL DEFAULT 0,
    failed_since     timestamptz,
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    disabled_at      timestamptz,
    CONSTRAINT people_subject CHECK ((role = 'admin') = (subject_id IS NULL)),
    CONSTRAINT people_password_needs_login CHECK (password_hash IS NULL OR login IS NOT NULL)
);
CREATE INDEX people_community ON people (community_id, created_at);
CREATE INDEX people_subject ON people (subject_id) WHERE subject_id IS NOT NULL;

CREATE TABLE sign_in_links (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id   uuid NOT NULL REFERENCES people(id),
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (used_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX sign_in_links_person ON sign_in_links (person_id, created_at);

CREATE TABLE web_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id     uuid NOT NULL REFERENCES people(id),
    token_hash    bytea NOT NULL UNIQUE,
    via           text NOT NULL CHECK (via IN ('password', 'link')),
    user_agent    text,
    address       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX web_sessions_person ON web_sessions (person_id, created_at) WHERE ended_at IS NULL;
"""

DROP = r"""
DROP TABLE IF EXISTS web_sessions, sign_in_links, people;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
