"""The staff journal: a community's transactions of one kind, newest first, by time.

The console's journal (``timebank.ledger.journal``) lists a community's transactions
newest first (by ``created_at``, then ``seq``), filtered by kind and by a date range,
a page at a time from a cursor. One index serves every such page: for one kind it is
read backwards from the cursor (or the end of the date range); for all kinds the
seven kinds' reads are merged (each reads at most a page). Without it a rare kind
(reversals, adjustments) or an old date range meant reading the community's whole
history: about a second on a million transactions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from timebank.migrations.helpers import run_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE INDEX transactions_journal ON transactions (community_id, kind, created_at, seq);
"""

DROP = r"""
DROP INDEX IF EXISTS transactions_journal;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
