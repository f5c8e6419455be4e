"""`timebank audit`: the points lots agree with the ledger."""

from __future__ import annotations

from timebank.core.audit import sql_checks

CHECKS: dict[str, str] = {
    "a member's points balance is the sum of its lots' remaining points": """
        SELECT a.id AS account_id, a.credits_posted - a.debits_posted AS balance, coalesce(l.remaining, 0) AS in_lots
          FROM accounts a JOIN parties p ON p.id = a.party_id AND p.kind = 'member'
          LEFT JOIN (SELECT account_id, sum(remaining) AS remaining FROM points_lots GROUP BY account_id) l
                 ON l.account_id = a.id
         WHERE a.asset = 'POINT' AND a.credits_posted - a.debits_posted <> coalesce(l.remaining, 0)
    """,
    "every lot's remaining points are its points less what was taken from it": """
        SELECT l.id AS lot_id, l.points, l.remaining, coalesce(c.taken, 0) AS taken
          FROM points_lots l
          LEFT JOIN (SELECT lot_id, sum(points) AS taken FROM points_consumptions GROUP BY lot_id) c ON c.lot_id = l.id
         WHERE l.remaining <> l.points - coalesce(c.taken, 0)
    """,
    "what lots gave and took per transaction equals its posted POINT entries on members": """
        WITH lots AS (
            SELECT l.transaction_id AS tx, l.account_id, l.points AS credited, 0::numeric AS taken
              FROM points_lots l WHERE EXISTS (SELECT 1 FROM transactions t WHERE t.id = l.transaction_id)
            UNION ALL
            SELECT c.transaction_id, l.account_id, CASE WHEN c.points < 0 THEN -c.points ELSE 0 END,
                   CASE WHEN c.points > 0 THEN c.points ELSE 0 END
              FROM points_consumptions c JOIN points_lots l ON l.id = c.lot_id),
        by_lots AS (SELECT tx, account_id, sum(credited) AS credits, sum(taken) AS debits FROM lots GROUP BY 1, 2),
        by_entries AS (
            SELECT e.transaction_id AS tx, e.account_id,
                   coalesce(sum(e.amount) FILTER (WHERE e.direction = 'credit'), 0) AS credits,
                   coalesce(sum(e.amount) FILTER (WHERE e.direction = 'debit'), 0) AS debits
              FROM entries e JOIN accounts a ON a.id = e.account_id
              JOIN parties p ON p.id = a.party_id AND p.kind = 'member'
             WHERE e.asset = 'POINT' AND e.layer = 'posted' GROUP BY 1, 2)
        SELECT coalesce(l.tx, e.tx) AS transaction_id, coalesce(l.account_id, e.account_id) AS account_id,
               l.credits AS lot_credits, e.credits AS entry_credits, l.debits AS lot_debits, e.debits AS entry_debits
          FROM by_lots l FULL JOIN by_entries e ON e.tx = l.tx AND e.account_id = l.account_id
         WHERE coalesce(l.credits, 0) <> coalesce(e.credits, 0) OR coalesce(l.debits, 0) <> coalesce(e.debits, 0)
    """,
}


points_checks = sql_checks(CHECKS)
