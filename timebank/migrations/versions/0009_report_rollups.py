"""Report rollups: the ledger's posted entries summed by hour and by what they are.

The reports (``timebank.reports``) sum entries by class: which kind of transaction
(and, for a reversal, which kind it reverses), whose account (a member's, a
merchant's, an organisation's, or a system account's role), which direction. Over a
million transactions, summing the entries at every request takes seconds. So the
database keeps those sums in ``ledger_rollups``, written by a statement trigger on
``entries`` in the same transaction as the entries themselves: a rollup can never
say what the entries do not (``timebank audit`` recomputes every rollup from the
entries and fails on any difference).

One definition of the classes: the view ``ledger_flows`` (one row per posted entry,
classified). The trigger reads it for the entries just written, the audit and the
reports' reads at the edges of a period read it for any time.

Rows are only ever inserted by the trigger, one per class per statement, so no two
postings ever wait for each other on a rollup row (a counter updated in place would
serialise every transfer of a community). ``ledger_rollups_fold`` (the minute job
"report-rollups") replaces the rows of each past hour by one row per class, in one
statement: the sums are the same before and after, at every snapshot. Members'
accounts are one class (``account_id`` NULL): per-member figures come from the
entries; merchants', organisations' and system accounts keep their id.

Hours are absolute (``date_bin`` on UTC instants), so a period that starts at local
midnight in any whole-hour time zone is whole hours; the reads take any remainder at
the edges from the entries.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from timebank.migrations.helpers import run_script

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE VIEW ledger_flows AS
SELECT e.id, e.transaction_id, e.community_id, e.created_at,
       date_bin('1 hour', e.created_at, timestamptz '2000-01-01 00:00:00+00') AS hour,
       e.asset, t.kind, o.kind AS reverses_kind,
       coalesce(a.system_role, p.kind) AS holder,
       CASE WHEN p.kind = 'member' THEN NULL ELSE e.account_id END AS account_id,
       e.direction, e.amount
  FROM entries e
  JOIN transactions t ON t.id = e.transaction_id
  LEFT JOIN transactions o ON o.id = t.reverses_id
  JOIN accounts a ON a.id = e.account_id
  LEFT JOIN parties p ON p.id = a.party_id
 WHERE e.layer = 'posted';

CREATE TABLE ledger_rollups (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id   uuid NOT NULL,
    hour           timestamptz NOT NULL,
    asset          text NOT NULL,
    kind           text NOT NULL,
    reverses_kind  text,
    holder         text NOT NULL,
    account_id     uuid,
    direction      text NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount         bigint NOT NULL CHECK (amount > 0),
    entries        bigint NOT NULL CHECK (entries > 0),
    folded         boolean NOT NULL DEFAULT false
);
CREATE INDEX ledger_rollups_period ON ledger_rollups (community_id, asset, hour);
CREATE INDEX ledger_rollups_unfolded ON ledger_rollups (hour) WHERE NOT folded;

CREATE FUNCTION ledger_rollup_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- `= ANY(ARRAY(...))`: index probes into entries for the rows just written,
    -- whatever the planner guesses of a transition table's size.
    INSERT INTO ledger_rollups (community_id, hour, asset, kind, reverses_kind, holder, account_id,
                                direction, amount, entries)
    SELECT f.community_id, f.hour, f.asset, f.kind, f.reverses_kind, f.holder, f.account_id,
           f.direction, sum(f.amount), count(*)
      FROM ledger_flows f
     WHERE f.id = ANY (ARRAY(SELECT n.id FROM new_entries n WHERE n.layer = 'posted'))
     GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    RETURN NULL;
END $$;

CREATE TRIGGER entries_rollup AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_rollup_entries();

-- One row per class for every hour before p_before that has rows not yet folded.
-- Sums are preserved: each row is deleted once and its amount goes into the new one.
CREATE FUNCTION ledger_rollups_fold(p_before timestamptz) RETURNS bigint LANGUAGE sql AS $$
    WITH hours AS (
        SELECT DISTINCT community_id, hour FROM ledger_rollups WHERE NOT folded AND hour < p_before
    ), gone AS (
        DELETE FROM ledger_rollups r USING hours h
         WHERE r.community_id = h.community_id AND r.hour = h.hour
        RETURNING r.*
    ), made AS (
        INSERT INTO ledger_rollups (community_id, hour, asset, kind, reverses_kind, holder, account_id,
                                    direction, amount, entries, folded)
        SELECT community_id, hour, asset, kind, reverses_kind, holder, account_id, direction,
               sum(amount), sum(entries), true
          FROM gone GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        RETURNING 1
    )
    SELECT count(*) FROM made
$$;

-- The history so far, folded.
INSERT INTO ledger_rollups (community_id, hour, asset, kind, reverses_kind, holder, account_id,
                            direction, amount, entries, folded)
SELECT community_id, hour, asset, kind, reverses_kind, holder, account_id, direction,
       sum(amount), count(*), true
  FROM ledger_flows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
"""

DROP = r"""
DROP TRIGGER IF EXISTS entries_rollup ON entries;
DROP FUNCTION IF EXISTS ledger_rollups_fold(timestamptz);
DROP FUNCTION IF EXISTS ledger_rollup_entries();
DROP TABLE IF EXISTS ledger_rollups;
DROP VIEW IF EXISTS ledger_flows;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
