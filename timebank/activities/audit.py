"""`timebank audit`: activities keep their capacity, and an attendance is credited once,
by its own record."""

from __future__ import annotations

from timebank.core.audit import sql_checks

CHECKS: dict[str, str] = {
    "no activity has more volunteers signed up than its capacity": """
        SELECT a.id AS activity_id, a.capacity, count(*) AS signed_up
          FROM activities a JOIN activity_signups s ON s.activity_id = a.id AND s.status = 'signed_up'
         GROUP BY a.id, a.capacity HAVING count(*) > a.capacity
    """,
    "every attendance's record is that attendance's, made by the activity": """
        SELECT s.activity_id, s.member_id, r.id AS record_id, r.source, r.external_ref
          FROM activity_signups s JOIN activities a ON a.id = s.activity_id
          JOIN service_records r ON r.id = s.record_id
         WHERE r.source <> 'activity' OR r.member_id <> s.member_id
            OR r.organisation_id IS DISTINCT FROM a.organisation_id
            OR r.external_ref <> 'activity:' || s.activity_id || ':' || s.member_id
            OR s.checked_out_at IS NULL
    """,
    "every activity record belongs to an attendance": """
        SELECT r.id AS record_id, r.external_ref
          FROM service_records r
         WHERE r.source = 'activity'
           AND NOT EXISTS (SELECT 1 FROM activity_signups s WHERE s.record_id = r.id)
    """,
}


activity_checks = sql_checks(CHECKS)
