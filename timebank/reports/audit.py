"""`timebank audit`: the report rollups equal the entries they sum.

Recomputes every rollup from the entries (the view ``ledger_flows``, the one definition
of the classes) and lists each hour and class where the rollups' amount or entry count
differs, or where one side has a class the other lacks. A hand edit, a disabled trigger
or a fold that lost a row all show here. And every entry carries its transaction's
time (the reports find a part-hour's entries through their transactions' time index).
"""

from __future__ import annotations

from timebank.core.audit import sql_checks

_KEY = """community_id, hour, asset, kind, coalesce(reverses_kind, '') AS reverses_kind, holder,
          coalesce(account_id::text, 'members') AS account, direction"""

CHECKS: dict[str, str] = {
    "every report rollup equals the sum of the entries it rolls up": f"""
        WITH r AS (SELECT {_KEY}, sum(amount) AS amount, sum(entries) AS entries
                     FROM ledger_rollups GROUP BY 1, 2, 3, 4, 5, 6, 7, 8),
             f AS (SELECT {_KEY}, sum(amount) AS amount, count(*) AS entries
                     FROM ledger_flows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)
        SELECT community_id, hour, asset, kind, reverses_kind, holder, account, direction,
               r.amount AS rollup_amount, f.amount AS entries_amount,
               r.entries AS rollup_entries, f.entries AS entries_count
          FROM r FULL JOIN f USING (community_id, hour, asset, kind, reverses_kind, holder, account, direction)
         WHERE r.amount IS DISTINCT FROM f.amount OR r.entries IS DISTINCT FROM f.entries
         ORDER BY hour, community_id
    """,
    "every entry carries its transaction's time": """
        SELECT e.id AS entry_id, e.transaction_id, e.created_at, t.created_at AS transaction_created_at
          FROM entries e JOIN transactions t ON t.id = e.transaction_id
         WHERE e.created_at <> t.created_at
    """,
}

report_checks = sql_checks(CHECKS)
