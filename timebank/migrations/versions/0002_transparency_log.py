"""Transparency log: per-community Merkle log of every ledger transaction.

* Every ledger transaction enters ``log_queue`` in the database transaction that
  creates it (the stamping trigger does it, so no code path can skip the log).
* The integrator moves queued transactions, in ``seq`` order, into ``log_leaves``
  (an index per community fixed forever), stores every new perfect subtree hash in
  ``log_nodes`` and signs a checkpoint into ``log_checkpoints``; all three are
  append-only, like the ledger.
* ``log_keys`` holds the *public* signing keys ever used (private keys live only in
  files, see timebank/log/keys.py), so retired keys stay published.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from timebank.migrations.helpers import run_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE log_keys (
    kid           text PRIMARY KEY,
    public_key    bytea NOT NULL UNIQUE CHECK (length(public_key) = 32),
    created_at    timestamptz NOT NULL,
    retired_at    timestamptz,
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE log_queue (
    community_id   uuid NOT NULL,
    seq            bigint NOT NULL,
    transaction_id uuid NOT NULL,
    PRIMARY KEY (community_id, seq)
);

CREATE TABLE log_leaves (
    community_id   uuid NOT NULL,
    idx            bigint NOT NULL CHECK (idx >= 0),
    transaction_id uuid NOT NULL UNIQUE,  -- read in the same transaction; never deleted (no FK check per leaf)
    sequenced_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, idx)
);

-- Hash of the perfect subtree (level, idx): leaves [idx * 2^level, (idx + 1) * 2^level);
-- level 0 holds the leaf hashes.
CREATE TABLE log_nodes (
    community_id uuid NOT NULL,
    level        smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx          bigint NOT NULL CHECK (idx >= 0),
    hash         bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (community_id, level, idx)
);

CREATE TABLE log_checkpoints (
    community_id uuid NOT NULL,
    tree_size    bigint NOT NULL CHECK (tree_size >= 0),
    root_hash    bytea NOT NULL CHECK (length(root_hash) = 32),
    note         text NOT NULL,
    kid          text NOT NULL REFERENCES log_keys (kid),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, tree_size)
);

CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE ON log_nodes
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER log_nodes_no_truncate BEFORE TRUNCATE ON log_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER log_checkpoints_no_truncate BEFORE TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- One trigger call per transaction does both: stamp the time and queue it for the
-- log (the identity seq is assigned before BEFORE triggers run). In the trigger, not
-- in ledger_post_batch (where one row per batch would cost less, 35-80 us per
-- transfer measured): a transaction written by hand with psql enters the public log
-- too, so even the bank's database administrators cannot add one unseen.
CREATE OR REPLACE FUNCTION ledger_stamp_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := now();
    INSERT INTO log_queue (community_id, seq, transaction_id) VALUES (NEW.community_id, NEW.seq, NEW.id);
    RETURN NEW;
END $$;

INSERT INTO log_queue (community_id, seq, transaction_id) SELECT community_id, seq, id FROM transactions;
"""

DROP = r"""
CREATE OR REPLACE FUNCTION ledger_stamp_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := now();
    RETURN NEW;
END $$;
DROP TABLE IF EXISTS log_checkpoints, log_nodes, log_leaves, log_queue, log_keys;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
