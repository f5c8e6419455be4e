"""`timebank audit`: recompute everything from the entries and compare.

Each check is one SQL query that returns the rows that are wrong; an empty result is
a pass. The checks are independent of the triggers that maintain the invariants, so
a bug in a trigger (or a hand edit with triggers disabled) shows up here.
"""

from __future__ import annotations

from timebank.core.audit import sql_checks

CHECKS: dict[str, str] = {
    "cached balances equal the sum of entries": """
        SELECT a.id AS account_id, a.community_id,
               a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
               coalesce(s.dp, 0) AS debits_posted_from_entries, coalesce(s.cp, 0) AS credits_posted_from_entries,
               coalesce(s.dq, 0) AS debits_pending_from_entries, coalesce(s.cq, 0) AS credits_pending_from_entries
          FROM accounts a
          LEFT JOIN (
                SELECT account_id,
                       sum(amount) FILTER (WHERE direction = 'debit'  AND layer = 'posted') AS dp,
                       sum(amount) FILTER (WHERE direction = 'credit' AND layer = 'posted') AS cp,
                       sum(CASE WHEN direction = 'debit' AND layer = 'pending' THEN amount
                                WHEN direction = 'debit' AND layer = 'release' THEN -amount END) AS dq,
                       sum(CASE WHEN direction = 'credit' AND layer = 'pending' THEN amount
                                WHEN direction = 'credit' AND layer = 'release' THEN -amount END) AS cq
                  FROM entries GROUP BY account_id) s ON s.account_id = a.id
         WHERE a.debits_posted <> coalesce(s.dp, 0) OR a.credits_posted <> coalesce(s.cp, 0)
            OR a.debits_pending <> coalesce(s.dq, 0) OR a.credits_pending <> coalesce(s.cq, 0)
    """,
    "the balances view agrees with the entries": """
        SELECT b.account_id, b.posted, b.pending, b.available, b.pending_credits,
               coalesce(s.posted, 0) AS posted_from_entries, coalesce(s.pending, 0) AS pending_from_entries,
               coalesce(s.posted, 0) - coalesce(s.pending, 0) AS available_from_entries,
               coalesce(s.pending_credits, 0) AS pending_credits_from_entries
          FROM account_balances b
          LEFT JOIN (
                SELECT account_id,
                       sum(CASE WHEN layer <> 'posted' THEN 0
                                WHEN direction = 'credit' THEN amount ELSE -amount END) AS posted,
                       sum(CASE WHEN direction <> 'debit' THEN 0 WHEN layer = 'pending' THEN amount
                                WHEN layer = 'release' THEN -amount ELSE 0 END) AS pending,
                       sum(CASE WHEN direction <> 'credit' THEN 0 WHEN layer = 'pending' THEN amount
                                WHEN layer = 'release' THEN -amount ELSE 0 END) AS pending_credits
                  FROM entries GROUP BY account_id) s ON s.account_id = b.account_id
         WHERE b.posted <> coalesce(s.posted, 0) OR b.pending <> coalesce(s.pending, 0)
            OR b.available <> coalesce(s.posted, 0) - coalesce(s.pending, 0)
            OR b.pending_credits <> coalesce(s.pending_credits, 0)
    """,
    "every asset of every community sums to zero": """
        SELECT community_id, asset,
               sum(credits_posted - debits_posted) AS posted_sum,
               sum(credits_pending - debits_pending) AS pending_sum
          FROM accounts GROUP BY community_id, asset
        HAVING sum(credits_posted - debits_posted) <> 0 OR sum(credits_pending - debits_pending) <> 0
    """,
    "every transaction is balanced per asset and layer": """
        SELECT t.id AS transaction_id, e.asset, e.layer,
               coalesce(sum(e.amount) FILTER (WHERE e.direction = 'debit'), 0) AS debits,
               coalesce(sum(e.amount) FILTER (WHERE e.direction = 'credit'), 0) AS credits
          FROM transactions t JOIN entries e ON e.transaction_id = t.id
         GROUP BY t.id, e.asset, e.layer
        HAVING coalesce(sum(e.amount) FILTER (WHERE e.direction = 'debit'), 0)
            <> coalesce(sum(e.amount) FILTER (WHERE e.direction = 'credit'), 0)
    """,
    "every transaction has entries in its own community": """
        SELECT t.id AS transaction_id FROM transactions t
         WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.transaction_id = t.id)
        UNION ALL
        SELECT e.transaction_id FROM entries e JOIN accounts a ON a.id = e.account_id
         WHERE a.community_id <> e.community_id OR a.asset <> e.asset
    """,
    "entry layers match the transaction phase": """
        SELECT t.id AS transaction_id, t.phase, e.layer FROM transactions t JOIN entries e ON e.transaction_id = t.id
         WHERE (t.phase = 'posted'  AND e.layer <> 'posted')
            OR (t.phase = 'pending' AND e.layer <> 'pending')
            OR (t.phase IN ('void', 'expire') AND e.layer <> 'release')
            OR (t.phase = 'post' AND e.layer = 'pending')
    """,
    "every hold resolution releases exactly what the hold reserved": """
        WITH held AS (
            SELECT t.id AS hold_id, e.account_id, e.asset, e.direction, sum(e.amount) AS amount
              FROM transactions t JOIN entries e ON e.transaction_id = t.id
             WHERE t.phase = 'pending' GROUP BY 1, 2, 3, 4),
        released AS (
            SELECT r.pending_id AS hold_id, e.account_id, e.asset, e.direction, sum(e.amount) AS amount
              FROM transactions r JOIN entries e ON e.transaction_id = r.id
             WHERE r.pending_id IS NOT NULL AND e.layer = 'release' GROUP BY 1, 2, 3, 4),
        posted AS (
            SELECT r.pending_id AS hold_id, e.account_id, e.asset, e.direction, sum(e.amount) AS amount
              FROM transactions r JOIN entries e ON e.transaction_id = r.id
             WHERE r.phase = 'post' AND e.layer = 'posted' GROUP BY 1, 2, 3, 4)
        SELECT 'release differs' AS problem, r.hold_id, r.account_id FROM released r
          LEFT JOIN held h USING (hold_id, account_id, asset, direction)
         WHERE h.amount IS DISTINCT FROM r.amount
        UNION ALL
        SELECT 'unreleased resolution', h.hold_id, h.account_id FROM held h
          JOIN transactions r ON r.pending_id = h.hold_id
          LEFT JOIN released x USING (hold_id, account_id, asset, direction)
         WHERE x.amount IS DISTINCT FROM h.amount
        UNION ALL
        SELECT 'post differs from hold', p.hold_id, p.account_id FROM posted p
          LEFT JOIN held h USING (hold_id, account_id, asset, direction)
         WHERE h.amount IS DISTINCT FROM p.amount
    """,
    "pending balances equal the open holds": """
        WITH open_holds AS (
            SELECT e.account_id,
                   sum(e.amount) FILTER (WHERE e.direction = 'debit') AS dq,
                   sum(e.amount) FILTER (WHERE e.direction = 'credit') AS cq
              FROM transactions t JOIN entries e ON e.transaction_id = t.id
             WHERE t.phase = 'pending' AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.pending_id = t.id)
             GROUP BY e.account_id)
        SELECT a.id AS account_id, a.debits_pending, coalesce(o.dq, 0) AS open_debits,
               a.credits_pending, coalesce(o.cq, 0) AS open_credits
          FROM accounts a LEFT JOIN open_holds o ON o.account_id = a.id
         WHERE a.debits_pending <> coalesce(o.dq, 0) OR a.credits_pending <> coalesce(o.cq, 0)
    """,
    "reversals mirror their original": """
        WITH orig AS (
            SELECT r.id AS reversal_id, e.account_id, e.asset, e.direction, sum(e.amount) AS amount
              FROM transactions r JOIN entries e ON e.transaction_id = r.reverses_id AND e.layer = 'posted'
             GROUP BY 1, 2, 3, 4),
        rev AS (
            SELECT r.id AS reversal_id, e.account_id, e.asset,
                   CASE e.direction WHEN 'debit' THEN 'credit' ELSE 'debit' END AS direction, sum(e.amount) AS amount
              FROM transactions r JOIN entries e ON e.transaction_id = r.id
             WHERE r.reverses_id IS NOT NULL GROUP BY 1, 2, 3, 4)
        SELECT coalesce(o.reversal_id, v.reversal_id) AS reversal_id, coalesce(o.account_id, v.account_id) AS account_id
          FROM orig o FULL JOIN rev v USING (reversal_id, account_id, asset, direction)
         WHERE o.amount IS DISTINCT FROM v.amount
    """,
    "every idempotent answer names a transaction of its community": """
        SELECT k.community_id, k.key, k.transaction_id FROM idempotency_keys k
          LEFT JOIN transactions t ON t.id = k.transaction_id
         WHERE k.transaction_id IS NOT NULL AND (t.id IS NULL OR t.community_id <> k.community_id)
    """,
    "no guarded account is beyond its limit": """
        SELECT id AS account_id, debits_posted, debits_pending, credits_posted, credit_limit FROM accounts
         WHERE debits_must_not_exceed_credits AND debits_posted + debits_pending > credits_posted + credit_limit
    """,
}


# What `timebank audit` runs of the ledger (timebank/audits.py lists every domain's group).
ledger_checks = sql_checks(CHECKS)
