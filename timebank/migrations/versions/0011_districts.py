"""Districts and crossing (通存通兑), family links and acting for a relative.

* A district is a ledger of its own: a ``communities`` row of ``kind = 'district'``,
  so it has accounts, transactions, receipts and a transparency log exactly like a
  community (one ledger code path, one log code path). Its parties are its member
  communities (``parties.kind = 'community'``), each with an HOUR and a POINT account
  whose balance (credits − debits) is the community's **position**, bounded both
  ways by the community's limit (``district_members.*_limit``, a trust line). Its
  ``exchange`` system account is where rate differences and settlements balance.
* A member community has a ``clearing`` system account per asset: value leaving the
  community is credited to it, value arriving is debited from it, so its balance
  (debits − credits) always equals the community's position in the district.
* ``district_members``: a community joins by consent of both sides (either may ask
  first); once both agreed, it is joined (its district party and accounts exist).
* ``district_members.points_per_unit``: how many of a community's points make one
  district point; A's points cross to B at ``A's : B's`` (default 1:1). One value per
  community rather than one rate per pair: rates per pair could be set so that a
  cycle A → B → C → A gains points; ratios of one value each never can.
* ``crossings``: one row per crossing naming its three transactions (append-only).
* ``district_settlements``: proposed by a district admin, approved by another (four
  eyes); the approved lines are posted as one district transaction and one
  transaction per community, named by ``settlement_parts``.
* ``family_links``, ``family_grants``, ``proxy_actions``: relatives (or a carer)
  linked with both members' consent and a staff confirmation; what each lets the
  other do for them; every action done for someone, by whom.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import importlib

from timebank.migrations.helpers import run_script

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE communities ADD COLUMN kind text NOT NULL DEFAULT 'community'
    CHECK (kind IN ('community', 'district'));

ALTER TABLE parties DROP CONSTRAINT parties_kind_check;
ALTER TABLE parties ADD CONSTRAINT parties_kind_check
    CHECK (kind IN ('member', 'organisation', 'merchant', 'community'));

ALTER TABLE accounts DROP CONSTRAINT accounts_system_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_system_role_check
    CHECK (system_role IN ('issuance', 'expired', 'fund', 'clearing', 'exchange'));

ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('service_credit', 'transfer', 'donation', 'redemption', 'expiry', 'reversal', 'adjustment',
                    'crossing', 'settlement'));

ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('admin', 'recorder', 'merchant', 'resident', 'auditor', 'district_admin'));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_subject;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_subject
    CHECK ((role IN ('admin', 'district_admin')) = (subject_id IS NULL));
ALTER TABLE people DROP CONSTRAINT people_role_check;
ALTER TABLE people ADD CONSTRAINT people_role_check
    CHECK (role IN ('admin', 'recorder', 'merchant', 'resident', 'auditor', 'district_admin'));
ALTER TABLE people DROP CONSTRAINT people_subject;
ALTER TABLE people ADD CONSTRAINT people_subject
    CHECK ((role IN ('admin', 'district_admin')) = (subject_id IS NULL));

CREATE TABLE districts (
    id                  uuid PRIMARY KEY REFERENCES communities (id),
    -- the trust line a joining community starts with, per asset (minutes, points)
    default_hour_limit  bigint NOT NULL CHECK (default_hour_limit BETWEEN 0 AND 1000000000000),
    default_point_limit bigint NOT NULL CHECK (default_point_limit BETWEEN 0 AND 1000000000000)
);

CREATE TABLE district_members (
    district_id          uuid NOT NULL REFERENCES districts (id),
    community_id         uuid NOT NULL UNIQUE REFERENCES communities (id),  -- one district at most
    district_consent_at  timestamptz,
    community_consent_at timestamptz,
    party_id             uuid UNIQUE,  -- the community's party in the district's ledger, once joined
    joined_at            timestamptz,
    -- the trust line per asset: how far the position may go below or above zero
    -- (held by the crossing under the locks of the accounts it moves)
    hour_limit           bigint NOT NULL DEFAULT 0 CHECK (hour_limit BETWEEN 0 AND 1000000000000),
    point_limit          bigint NOT NULL DEFAULT 0 CHECK (point_limit BETWEEN 0 AND 1000000000000),
    -- how many of this community's points are one district point: the rate between two
    -- communities is the ratio of theirs (one value per community, so no round trip or
    -- cycle of crossings can ever gain points)
    points_per_unit      integer NOT NULL DEFAULT 1 CHECK (points_per_unit BETWEEN 1 AND 1000000),
    PRIMARY KEY (district_id, community_id),
    FOREIGN KEY (party_id, district_id) REFERENCES parties (id, community_id),
    CONSTRAINT district_members_joined CHECK ((joined_at IS NULL) = (party_id IS NULL)),
    CONSTRAINT district_members_consent CHECK (
        joined_at IS NULL OR (district_consent_at IS NOT NULL AND community_consent_at IS NOT NULL)),
    CONSTRAINT district_members_not_itself CHECK (district_id <> community_id)
);

CREATE TABLE crossings (
    id                      uuid PRIMARY KEY,
    district_id             uuid NOT NULL REFERENCES districts (id),
    asset                   text NOT NULL CHECK (asset IN ('HOUR', 'POINT')),
    from_community_id       uuid NOT NULL REFERENCES communities (id),
    from_account_id         uuid NOT NULL REFERENCES accounts (id),
    from_transaction_id     uuid NOT NULL UNIQUE REFERENCES transactions (id),
    district_transaction_id uuid NOT NULL UNIQUE REFERENCES transactions (id),
    to_community_id         uuid NOT NULL REFERENCES communities (id),
    to_account_id           uuid NOT NULL REFERENCES accounts (id),
    to_transaction_id       uuid NOT NULL UNIQUE REFERENCES transactions (id),
    amount_requested        bigint NOT NULL CHECK (amount_requested > 0),
    amount_sent             bigint NOT NULL CHECK (amount_sent BETWEEN 1 AND amount_requested),
    amount_received         bigint NOT NULL CHECK (amount_received > 0),
    rate_from               integer NOT NULL CHECK (rate_from > 0),
    rate_to                 integer NOT NULL CHECK (rate_to > 0),
    -- the member a relative or carer acted for (the sender), when not the sender's own key
    acted_for               uuid,
    principal_id            uuid,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crossings_between CHECK (from_community_id <> to_community_id),
    -- never more out than in: received * rate_from <= sent * rate_to
    CONSTRAINT crossings_never_create CHECK (amount_received::numeric * rate_from <= amount_sent::numeric * rate_to),
    CONSTRAINT crossings_hours_one_to_one CHECK (
        asset <> 'HOUR' OR (amount_sent = amount_received AND rate_from = 1 AND rate_to = 1))
);
CREATE INDEX crossings_district ON crossings (district_id, created_at);
CREATE INDEX crossings_from ON crossings (from_community_id, created_at);
CREATE INDEX crossings_to ON crossings (to_community_id, created_at);
CREATE TRIGGER crossings_append_only BEFORE UPDATE OR DELETE ON crossings
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TABLE district_settlements (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    district_id             uuid NOT NULL REFERENCES districts (id),
    period_from             timestamptz NOT NULL,
    period_to               timestamptz NOT NULL,
    -- [{community_id, asset, amount}]: amount is the position settled (signed)
    lines                   jsonb NOT NULL,
    proposed_by             uuid NOT NULL,
    proposed_at             timestamptz NOT NULL DEFAULT now(),
    approved_by             uuid,
    approved_at             timestamptz,
    cancelled_by            uuid,
    cancelled_at            timestamptz,
    district_transaction_id uuid UNIQUE REFERENCES transactions (id),
    CONSTRAINT settlements_period CHECK (period_from < period_to),
    CONSTRAINT settlements_four_eyes CHECK (approved_by IS NULL OR approved_by <> proposed_by),
    CONSTRAINT settlements_once CHECK (approved_at IS NULL OR cancelled_at IS NULL),
    CONSTRAINT settlements_posted CHECK ((approved_at IS NULL) = (district_transaction_id IS NULL))
);
CREATE INDEX district_settlements_district ON district_settlements (district_id, proposed_at);
-- at most one open proposal per district: approve or cancel it before the next
CREATE UNIQUE INDEX district_settlements_one_open ON district_settlements (district_id)
    WHERE approved_at IS NULL AND cancelled_at IS NULL;

CREATE TABLE settlement_parts (
    settlement_id  uuid NOT NULL REFERENCES district_settlements (id),
    community_id   uuid NOT NULL REFERENCES communities (id),
    transaction_id uuid NOT NULL UNIQUE REFERENCES transactions (id),
    PRIMARY KEY (settlement_id, community_id)
);
CREATE TRIGGER settlement_parts_append_only BEFORE UPDATE OR DELETE ON settlement_parts
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

CREATE TABLE family_links (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_a        uuid NOT NULL,  -- who asked (made the family code)
    community_a     uuid NOT NULL,
    member_b        uuid,           -- who answered with the code (their consent)
    community_b     uuid,
    relation        text NOT NULL CHECK (relation IN ('parent', 'child', 'spouse', 'sibling', 'grandparent',
                                                      'grandchild', 'relative', 'carer')),
    -- the one-time family code (亲情码) member_a gives the relative: only its hash is kept
    code_hash       bytea UNIQUE,
    code_expires_at timestamptz NOT NULL,
    a_consent_at    timestamptz NOT NULL DEFAULT now(),
    b_consent_at    timestamptz,
    confirmed_at    timestamptz,
    confirmed_by    uuid,
    ended_at        timestamptz,
    ended_by        uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (member_a, community_a) REFERENCES parties (id, community_id),
    FOREIGN KEY (member_b, community_b) REFERENCES parties (id, community_id),
    CONSTRAINT family_links_two_people CHECK (member_a <> member_b),
    CONSTRAINT family_links_answered CHECK ((member_b IS NULL) = (b_consent_at IS NULL)
                                            AND (member_b IS NULL) = (community_b IS NULL)),
    CONSTRAINT family_links_confirmed_after_consent CHECK (confirmed_at IS NULL OR b_consent_at IS NOT NULL),
    CONSTRAINT family_links_confirmer CHECK ((confirmed_at IS NULL) = (confirmed_by IS NULL))
);
-- one live link per pair, whoever asked
CREATE UNIQUE INDEX family_links_pair ON family_links (least(member_a, member_b), greatest(member_a, member_b))
    WHERE ended_at IS NULL AND member_b IS NOT NULL;
CREATE INDEX family_links_a ON family_links (member_a);
CREATE INDEX family_links_b ON family_links (member_b);

CREATE TABLE family_grants (
    link_id     uuid NOT NULL REFERENCES family_links (id),
    grantor     uuid NOT NULL,  -- the member who lets the other act for them
    action      text NOT NULL CHECK (action IN ('view', 'redeem', 'give')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (link_id, grantor, action)
);

CREATE TABLE proxy_actions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id            uuid NOT NULL REFERENCES family_links (id),
    actor_member_id    uuid NOT NULL,
    actor_community_id uuid NOT NULL,
    for_member_id      uuid NOT NULL,
    for_community_id   uuid NOT NULL,
    action             text NOT NULL CHECK (action IN ('view', 'redeem', 'give')),
    detail             jsonb NOT NULL DEFAULT '{}'::jsonb,
    transaction_id     uuid,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proxy_actions_for ON proxy_actions (for_member_id, created_at);
CREATE INDEX proxy_actions_link ON proxy_actions (link_id, id);
CREATE INDEX proxy_actions_actor ON proxy_actions (actor_member_id, created_at);
CREATE TRIGGER proxy_actions_append_only BEFORE UPDATE OR DELETE ON proxy_actions
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

-- === Redemption at another community's merchant (issue 18, item 2) ===========================
-- A member of community A redeems a reward of a merchant of community B (one district):
-- the redemption stays B's (community_id: the merchant's counter, statements and reports),
-- the member and the hold are A's (member_community_id; the hold moves paid_points from the
-- member to A's clearing account), and the confirmation posts the hold as the sending part
-- of a crossing. The rate is the district's when the points were held (a quote the voucher
-- keeps): paid_points is the least whole number of A's points whose worth in B's, rounded
-- down, covers the price (so the merchant receives floor(paid × to / from) ≥ price, never
-- more than one of A's points' worth above it). At home: 1:1 and paid = price.
ALTER TABLE redemptions ADD COLUMN member_community_id uuid;
ALTER TABLE redemptions ADD COLUMN paid_points bigint;
ALTER TABLE redemptions ADD COLUMN rate_from integer NOT NULL DEFAULT 1 CHECK (rate_from BETWEEN 1 AND 1000000);
ALTER TABLE redemptions ADD COLUMN rate_to integer NOT NULL DEFAULT 1 CHECK (rate_to BETWEEN 1 AND 1000000);
ALTER TABLE redemptions DISABLE TRIGGER redemptions_guard;
UPDATE redemptions SET member_community_id = community_id, paid_points = price_points;
ALTER TABLE redemptions ENABLE TRIGGER redemptions_guard;
ALTER TABLE redemptions ALTER COLUMN member_community_id SET NOT NULL, ALTER COLUMN paid_points SET NOT NULL;
ALTER TABLE redemptions ADD CONSTRAINT redemptions_paid_covers_price CHECK (
    paid_points::numeric * rate_to >= price_points::numeric * rate_from
    AND (paid_points - 1)::numeric * rate_to < price_points::numeric * rate_from);
ALTER TABLE redemptions ADD CONSTRAINT redemptions_home_one_to_one CHECK (
    member_community_id <> community_id OR (rate_from = 1 AND rate_to = 1));
ALTER TABLE redemptions DROP CONSTRAINT redemptions_member_id_community_id_fkey;
ALTER TABLE redemptions ADD CONSTRAINT redemptions_member_fkey
    FOREIGN KEY (member_id, member_community_id) REFERENCES parties (id, community_id);
-- the holds due in a community's ledger (the hold-timeout job asks per ledger)
CREATE INDEX redemptions_open_holds ON redemptions (member_community_id, expires_at) WHERE status = 'held';

-- What a redemption is never changes; its status moves once, from held.
CREATE OR REPLACE FUNCTION redemption_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'redemptions are never deleted' USING ERRCODE = 'TB001';
    END IF;
    IF (NEW.id, NEW.community_id, NEW.reward_id, NEW.merchant_id, NEW.member_id, NEW.star_level, NEW.price_points,
        NEW.code, NEW.hold_id, NEW.period_start, NEW.expires_at, NEW.token_nonce, NEW.created_by, NEW.created_at,
        NEW.member_community_id, NEW.paid_points, NEW.rate_from, NEW.rate_to)
       IS DISTINCT FROM
       (OLD.id, OLD.community_id, OLD.reward_id, OLD.merchant_id, OLD.member_id, OLD.star_level, OLD.price_points,
        OLD.code, OLD.hold_id, OLD.period_start, OLD.expires_at, OLD.token_nonce, OLD.created_by, OLD.created_at,
        OLD.member_community_id, OLD.paid_points, OLD.rate_from, OLD.rate_to)
       OR OLD.status <> 'held' THEN
        RAISE EXCEPTION 'redemption % is %: it does not change again', OLD.id, OLD.status USING ERRCODE = 'TB001';
    END IF;
    RETURN NEW;
END $$;
-- === end redemption at another community's merchant ==========================================
"""

DROP = r"""
-- === undo: redemption at another community's merchant (rows of cross redemptions must go first) ===
CREATE OR REPLACE FUNCTION redemption_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'redemptions are never deleted' USING ERRCODE = 'TB001';
    END IF;
    IF (NEW.id, NEW.community_id, NEW.reward_id, NEW.merchant_id, NEW.member_id, NEW.star_level, NEW.price_points,
        NEW.code, NEW.hold_id, NEW.period_start, NEW.expires_at, NEW.token_nonce, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.community_id, OLD.reward_id, OLD.merchant_id, OLD.member_id, OLD.star_level, OLD.price_points,
        OLD.code, OLD.hold_id, OLD.period_start, OLD.expires_at, OLD.token_nonce, OLD.created_by, OLD.created_at)
       OR OLD.status <> 'held' THEN
        RAISE EXCEPTION 'redemption % is %: it does not change again', OLD.id, OLD.status USING ERRCODE = 'TB001';
    END IF;
    RETURN NEW;
END $$;
DROP INDEX IF EXISTS redemptions_open_holds;
ALTER TABLE redemptions DROP CONSTRAINT IF EXISTS redemptions_member_fkey;
ALTER TABLE redemptions ADD CONSTRAINT redemptions_member_id_community_id_fkey
    FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id);
ALTER TABLE redemptions DROP COLUMN member_community_id, DROP COLUMN paid_points,
    DROP COLUMN rate_from, DROP COLUMN rate_to;
-- === end undo: redemption at another community's merchant ===
DROP TABLE IF EXISTS proxy_actions, family_grants, family_links, settlement_parts, district_settlements,
    crossings, district_members, districts;
ALTER TABLE people DROP CONSTRAINT people_subject;
ALTER TABLE people ADD CONSTRAINT people_subject CHECK ((role = 'admin') = (subject_id IS NULL));
ALTER TABLE people DROP CONSTRAINT people_role_check;
ALTER TABLE people ADD CONSTRAINT people_role_check
    CHECK (role IN ('admin', 'recorder', 'merchant', 'resident', 'auditor'));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_subject;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_subject CHECK ((role = 'admin') = (subject_id IS NULL));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('admin', 'recorder', 'merchant', 'resident', 'auditor'));
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('service_credit', 'transfer', 'donation', 'redemption', 'expiry', 'reversal', 'adjustment'));
ALTER TABLE accounts DROP CONSTRAINT accounts_system_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_system_role_check
    CHECK (system_role IN ('issuance', 'expired', 'fund'));
ALTER TABLE parties DROP CONSTRAINT parties_kind_check;
ALTER TABLE parties ADD CONSTRAINT parties_kind_check CHECK (kind IN ('member', 'organisation', 'merchant'));
ALTER TABLE communities DROP COLUMN kind;
"""


# ledger_apply (migration 0001) learns one more refusal, in the query that already reads
# every locked account: a district's clearing and exchange accounts move only with
# crossings, settlements and redemptions across communities ('district_account'), so a
# transfer, an adjustment or a reversal can never make a clearing balance differ from
# its position, whoever posts it. (In PostgreSQL rather than in the service: no query
# of its own per transfer, and no path around it.)
_OLD_CASE = "SELECT CASE WHEN bool_or(l.asset <> a.asset) THEN 'asset_mismatch' ELSE 'insufficient_funds' END"
_NEW_CASE = """SELECT CASE WHEN bool_or(l.asset <> a.asset) THEN 'asset_mismatch'
                WHEN bool_or(a.system_role IN ('clearing', 'exchange'))
                     AND p_kind NOT IN ('crossing', 'settlement', 'redemption') THEN 'district_account'
                ELSE 'insufficient_funds' END"""
_OLD_HAVING = "    HAVING bool_or(l.asset <> a.asset)\n"
_NEW_HAVING = """    HAVING bool_or(l.asset <> a.asset)
        OR (bool_or(a.system_role IN ('clearing', 'exchange'))
            AND p_kind NOT IN ('crossing', 'settlement', 'redemption'))
"""


def ledger_apply(guard_district_accounts: bool) -> str:
    """0001's ledger_apply, as CREATE OR REPLACE, with or without the district guard."""
    schema = importlib.import_module("timebank.migrations.versions.0001_ledger_core").SCHEMA
    start = schema.index("CREATE FUNCTION ledger_apply(")
    end = schema.index("END $$;", start) + len("END $$;")
    body = schema[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if guard_district_accounts:
        assert body.count(_OLD_CASE) == 1 and body.count(_OLD_HAVING) == 1
        body = body.replace(_OLD_CASE, _NEW_CASE).replace(_OLD_HAVING, _NEW_HAVING)
    return body + "\n"


def upgrade() -> None:
    run_script(SCHEMA + ledger_apply(True))


def downgrade() -> None:
    run_script(ledger_apply(False) + DROP)
