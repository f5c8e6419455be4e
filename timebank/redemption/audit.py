"""`timebank audit`: rewards, limits and redemptions agree with each other and the ledger."""

from __future__ import annotations

from timebank.core.audit import sql_checks

CHECKS: dict[str, str] = {
    "a reward's held and redeemed units count its redemptions": """
        SELECT r.id AS reward_id, r.held, r.redeemed,
               count(d.id) FILTER (WHERE d.status = 'held') AS held_redemptions,
               count(d.id) FILTER (WHERE d.status = 'confirmed') AS confirmed_redemptions
          FROM rewards r LEFT JOIN redemptions d ON d.reward_id = r.id
         GROUP BY r.id
        HAVING r.held <> count(d.id) FILTER (WHERE d.status = 'held')
            OR r.redeemed <> count(d.id) FILTER (WHERE d.status = 'confirmed')
    """,
    "a member's limit counts are its held and confirmed redemptions in the period": """
        SELECT coalesce(u.reward_id, d.reward_id) AS reward_id, coalesce(u.member_id, d.member_id) AS member_id,
               coalesce(u.period_start, d.period_start) AS period_start, u.used, d.n AS redemptions
          FROM redemption_counts u
          FULL JOIN (SELECT reward_id, member_id, period_start, count(*) AS n FROM redemptions
                      WHERE period_start IS NOT NULL AND status IN ('held', 'confirmed')
                      GROUP BY 1, 2, 3) d USING (reward_id, member_id, period_start)
         WHERE coalesce(u.used, 0) <> coalesce(d.n, 0)
    """,
    "every redemption's hold and resolution are the ledger's": """
        SELECT d.id AS redemption_id, d.status, h.phase AS hold_phase, h.kind AS hold_kind, s.phase AS resolution_phase
          FROM redemptions d
          LEFT JOIN transactions h ON h.id = d.hold_id
          LEFT JOIN transactions s ON s.pending_id = d.hold_id
         WHERE h.id IS NULL OR h.phase <> 'pending' OR h.kind <> 'redemption' OR h.community_id <> d.community_id
            OR (d.status = 'held' AND s.id IS NOT NULL AND s.phase <> 'expire')
            OR (d.status = 'confirmed' AND (s.phase IS DISTINCT FROM 'post' OR s.id <> d.resolution_id))
            OR (d.status = 'cancelled' AND (s.phase IS DISTINCT FROM 'void' OR s.id <> d.resolution_id))
            OR (d.status = 'expired' AND (s.phase NOT IN ('expire', 'void') OR s.id <> d.resolution_id))
    """,
    "a redemption hold moves its price from the member to the merchant": """
        SELECT d.id AS redemption_id, d.price_points, e.amount, e.direction, a.party_id
          FROM redemptions d JOIN entries e ON e.transaction_id = d.hold_id
          JOIN accounts a ON a.id = e.account_id
         WHERE e.amount <> d.price_points OR e.asset <> 'POINT'
            OR a.party_id <> CASE e.direction WHEN 'debit' THEN d.member_id ELSE d.merchant_id END
    """,
}


redemption_checks = sql_checks(CHECKS)
