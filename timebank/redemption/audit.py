"""`timebank audit`: rewards, limits and redemptions agree with each other and the ledger.

A redemption at another community's merchant holds in the member's community's ledger
(``member_community_id``, ``paid_points`` to that community's clearing account), and its
confirmation is a crossing whose sending part is the hold's posting."""

from __future__ import annotations

from timebank.core.audit import sql_checks

CHECKS: dict[str, str] = {
    "a reward's held and redeemed units count its redemptions": """
        SELECT r.id AS reward_id, r.held, r.redeemed,
               count(d.id) FILTER (WHERE d.status = 'held') AS held_redemptions,
               count(d.id) FILTER (WHERE d.status = 'confirmed') AS confirmed_redemptions
          FROM rewards r LEFT JOIN redemptions d ON d.reward_id = r.id
         GROUP BY r.id, r.community_id
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
         WHERE h.id IS NULL OR h.phase <> 'pending' OR h.kind <> 'redemption'
            OR h.community_id <> d.member_community_id
            OR (d.status = 'held' AND s.id IS NOT NULL AND s.phase <> 'expire')
            OR (d.status = 'confirmed' AND (s.phase IS DISTINCT FROM 'post' OR s.id <> d.resolution_id))
            OR (d.status = 'cancelled' AND (s.phase IS DISTINCT FROM 'void' OR s.id <> d.resolution_id))
            OR (d.status = 'expired' AND (s.phase NOT IN ('expire', 'void') OR s.id <> d.resolution_id))
    """,
    "a redemption hold moves its price from the member to the merchant": """
        SELECT d.id AS redemption_id, d.paid_points, e.amount, e.direction, a.party_id, a.system_role
          FROM redemptions d JOIN entries e ON e.transaction_id = d.hold_id
          JOIN accounts a ON a.id = e.account_id
         WHERE e.amount <> d.paid_points OR e.asset <> 'POINT' OR a.community_id <> d.member_community_id
            OR (e.direction = 'debit' AND a.party_id IS DISTINCT FROM d.member_id)
            OR (e.direction = 'credit' AND d.member_community_id = d.community_id
                AND a.party_id IS DISTINCT FROM d.merchant_id)
            OR (e.direction = 'credit' AND d.member_community_id <> d.community_id
                AND (a.party_id IS NOT NULL OR a.system_role IS DISTINCT FROM 'clearing'))
    """,
    "a redemption confirmed across communities is the crossing of its hold, at its rate": """
        SELECT d.id AS redemption_id, d.paid_points, d.price_points, c.id AS crossing_id,
               c.amount_sent, c.amount_received
          FROM redemptions d
          LEFT JOIN crossings c ON c.from_transaction_id = d.resolution_id
          LEFT JOIN accounts m ON m.id = c.to_account_id
         WHERE d.status = 'confirmed' AND d.member_community_id <> d.community_id
           AND (c.id IS NULL OR c.asset <> 'POINT' OR c.from_community_id <> d.member_community_id
                OR c.to_community_id <> d.community_id OR m.party_id IS DISTINCT FROM d.merchant_id
                OR c.amount_sent <> d.paid_points OR c.amount_received < d.price_points
                OR c.rate_from <> d.rate_from OR c.rate_to <> d.rate_to)
    """,
}


redemption_checks = sql_checks(CHECKS)
