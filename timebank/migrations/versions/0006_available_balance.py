"""One definition of an account's balances: the ``account_balances`` view.

Posted, pending and available balances were computed from the cached columns of
``accounts`` in four places (the ledger's account view, redemption eligibility, the
points summary and the expiry job). They now read this view, so the formula lives
once, next to the columns it reads:

* ``posted``          = credits_posted - debits_posted
* ``pending``         = debits_pending (value reserved by open holds)
* ``available``       = posted - pending (what may be spent or held now)
* ``pending_credits`` = credits_pending (value on its way in)

The view is simple (one table, no aggregates), so ``SELECT ... FOR UPDATE`` on it locks
the account rows, and an index on ``accounts`` serves its lookups. The ledger audit
checks that it agrees with the entries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from timebank.migrations.helpers import run_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE VIEW account_balances AS
SELECT a.id AS account_id,
       a.community_id,
       a.asset,
       a.party_id,
       a.system_role,
       a.credits_posted - a.debits_posted AS posted,
       a.debits_pending AS pending,
       a.credits_posted - a.debits_posted - a.debits_pending AS available,
       a.credits_pending AS pending_credits,
       a.credit_limit
  FROM accounts a;
"""

DROP = r"""
DROP VIEW IF EXISTS account_balances;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
