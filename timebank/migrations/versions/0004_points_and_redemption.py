"""Points lots follow the ledger; rewards and redemptions (the VIP love-exchange).

* ``points_lots`` gain ``remaining``. Every posted ``POINT`` entry on a member's
  account moves lots, in the database, whoever wrote it: a credit makes a lot (a
  reversal's credit first gives back what the reversed transaction took), a debit
  consumes lots oldest-expiry first (a reversal first takes back the lot its
  original made). ``points_consumptions`` records every lot a transaction touched,
  so the member's posted balance always equals the sum of the lots' ``remaining``
  (``timebank audit`` checks it). ``remaining`` changes only through entries.
* Points cannot be overdrawn: no credit limit on a party's ``POINT`` account.
* ``rewards``: what merchants give for points. ``stock`` is what is still free to
  hold (NULL: unlimited), ``held`` and ``redeemed`` count the units reserved by open
  redemptions and confirmed ones.
* ``redemption_counts``: the units a member took of a reward in one limit period
  (held or confirmed), the row that makes limits hold under concurrency.
* ``redemptions``: a hold on the member's points with a one-time voucher.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from timebank.migrations.helpers import run_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = r"""
-- When a lot credited at `at` expires: local midnight, per the community's policy
-- (12 months after the credit by default, or the end of the next calendar year).
-- The one home of this rule; the service reads the result from the lot.
CREATE FUNCTION points_lot_expiry(p_community_id uuid, p_at timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tz text;
    rule jsonb;
    local_day date;
BEGIN
    SELECT c.timezone INTO tz FROM communities c WHERE c.id = p_community_id;
    SELECT p.policy -> 'points_expiry' INTO rule FROM community_policies p
     WHERE p.community_id = p_community_id ORDER BY p.version DESC LIMIT 1;
    local_day := (p_at AT TIME ZONE tz)::date;
    IF coalesce(rule ->> 'kind', 'months_after_credit') = 'end_of_next_year' THEN
        RETURN make_date(extract(year FROM local_day)::int + 2, 1, 1)::timestamp AT TIME ZONE tz;
    END IF;
    -- date + months clamps to the month's last day (31 Jan + 1 month = 28/29 Feb)
    RETURN (local_day + make_interval(months => coalesce((rule ->> 'months')::int, 12)))::date::timestamp
           AT TIME ZONE tz;
END $$;

ALTER TABLE points_lots ADD COLUMN remaining bigint;
ALTER TABLE points_lots DROP CONSTRAINT points_lots_transaction_id_key;
ALTER TABLE points_lots ADD CONSTRAINT points_lots_one_per_credit UNIQUE (transaction_id, account_id);

CREATE TABLE points_consumptions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id         uuid NOT NULL REFERENCES points_lots (id),
    transaction_id uuid NOT NULL,
    -- points taken from the lot; negative when a reversal gives them back
    points         bigint NOT NULL CHECK (points <> 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX points_consumptions_lot ON points_consumptions (lot_id);
CREATE INDEX points_consumptions_transaction ON points_consumptions (transaction_id);
CREATE TRIGGER points_consumptions_append_only BEFORE UPDATE OR DELETE ON points_consumptions
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER points_consumptions_no_truncate BEFORE TRUNCATE ON points_consumptions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- Existing data: a member's balance is in its newest lots (spending took the oldest);
-- what no lot explains (points that came by transfer) becomes a lot of its own.
DO $$
DECLARE
    acc record;
    lot record;
    left_over bigint;
BEGIN
    FOR acc IN SELECT a.id, a.community_id, a.party_id, a.credits_posted - a.debits_posted AS balance
                 FROM accounts a JOIN parties p ON p.id = a.party_id
                WHERE a.asset = 'POINT' AND p.kind = 'member' LOOP
        left_over := acc.balance;
        FOR lot IN SELECT id, points FROM points_lots WHERE account_id = acc.id AND reversed_at IS NULL
                    ORDER BY expires_at DESC, id DESC LOOP
            UPDATE points_lots SET remaining = least(lot.points, left_over) WHERE id = lot.id;
            left_over := left_over - least(lot.points, left_over);
        END LOOP;
        IF left_over > 0 THEN
            INSERT INTO points_lots (community_id, member_id, account_id, transaction_id, points, remaining,
                                     credited_at, expires_at)
            VALUES (acc.community_id, acc.party_id, acc.id, gen_random_uuid(), left_over, left_over, now(),
                    points_lot_expiry(acc.community_id, now()));
        END IF;
    END LOOP;
    UPDATE points_lots SET remaining = 0 WHERE remaining IS NULL;
END $$;
ALTER TABLE points_lots ALTER COLUMN remaining SET NOT NULL;
ALTER TABLE points_lots ADD CONSTRAINT points_lots_remaining CHECK (remaining BETWEEN 0 AND points);
CREATE INDEX points_lots_open ON points_lots (account_id, expires_at, id) WHERE remaining > 0;
CREATE INDEX points_lots_expiring ON points_lots (community_id, expires_at) WHERE remaining > 0;

-- What a lot is never changes; `remaining` and `reversed_at` move only with ledger
-- entries (the trigger below runs one level down), `record_id` is set once.
CREATE FUNCTION points_lot_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.community_id, NEW.member_id, NEW.account_id, NEW.transaction_id, NEW.credited_at,
        NEW.expires_at) IS DISTINCT FROM
       (OLD.id, OLD.community_id, OLD.member_id, OLD.account_id, OLD.transaction_id, OLD.credited_at,
        OLD.expires_at)
       OR (OLD.record_id IS NOT NULL AND NEW.record_id IS DISTINCT FROM OLD.record_id)
       OR (pg_trigger_depth() < 2 AND (NEW.remaining IS DISTINCT FROM OLD.remaining
                                       OR NEW.points IS DISTINCT FROM OLD.points
                                       OR NEW.reversed_at IS DISTINCT FROM OLD.reversed_at)) THEN
        RAISE EXCEPTION 'points lots change only through ledger entries' USING ERRCODE = 'TB004';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER points_lots_guard BEFORE UPDATE ON points_lots
    FOR EACH ROW EXECUTE FUNCTION points_lot_guard();
CREATE TRIGGER points_lots_no_truncate BEFORE TRUNCATE ON points_lots
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- After each posted POINT entry on a member's account: move the member's lots. The
-- account row is locked by ledger_apply, so one transaction at a time works on an
-- account's lots; they are locked in one order (expiry, id).
CREATE FUNCTION points_follow_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    member_id uuid;
    tx record;
    want bigint := NEW.amount;
    take bigint;
    lot record;
BEGIN
    SELECT a.party_id INTO member_id FROM accounts a JOIN parties p ON p.id = a.party_id
     WHERE a.id = NEW.account_id AND p.kind = 'member';
    IF member_id IS NULL THEN
        RETURN NULL;  -- system, organisation and merchant accounts have no lots
    END IF;
    SELECT t.kind, t.reverses_id INTO tx FROM transactions t WHERE t.id = NEW.transaction_id;
    IF NEW.direction = 'credit' THEN
        IF tx.reverses_id IS NOT NULL THEN
            -- a reversal gives back what its original took from this account's lots
            FOR lot IN SELECT c.lot_id, sum(c.points) AS points FROM points_consumptions c
                         JOIN points_lots l ON l.id = c.lot_id
                        WHERE c.transaction_id = tx.reverses_id AND l.account_id = NEW.account_id
                        GROUP BY c.lot_id HAVING sum(c.points) > 0 ORDER BY c.lot_id LOOP
                take := least(want, lot.points);
                EXIT WHEN take <= 0;
                UPDATE points_lots SET remaining = remaining + take WHERE id = lot.lot_id;
                INSERT INTO points_consumptions (lot_id, transaction_id, points)
                VALUES (lot.lot_id, NEW.transaction_id, -take);
                want := want - take;
            END LOOP;
        END IF;
        IF want > 0 THEN
            INSERT INTO points_lots (community_id, member_id, account_id, transaction_id, points, remaining,
                                     credited_at, expires_at)
            VALUES (NEW.community_id, member_id, NEW.account_id, NEW.transaction_id, want, want, now(),
                    points_lot_expiry(NEW.community_id, now()))
            ON CONFLICT (transaction_id, account_id) DO UPDATE
               SET points = points_lots.points + EXCLUDED.points, remaining = points_lots.remaining + EXCLUDED.remaining;
        END IF;
        RETURN NULL;
    END IF;
    IF tx.reverses_id IS NOT NULL THEN
        UPDATE points_lots SET reversed_at = now()
         WHERE transaction_id = tx.reverses_id AND account_id = NEW.account_id;
    END IF;
    -- A debit consumes the oldest-expiring lots first (a reversal: its original's lot first).
    FOR lot IN SELECT l.id, l.remaining FROM points_lots l
                WHERE l.account_id = NEW.account_id AND l.remaining > 0
                ORDER BY (l.transaction_id = tx.reverses_id) IS TRUE DESC, l.expires_at, l.id
                  FOR UPDATE LOOP
        take := least(want, lot.remaining);
        UPDATE points_lots SET remaining = remaining - take WHERE id = lot.id;
        INSERT INTO points_consumptions (lot_id, transaction_id, points) VALUES (lot.id, NEW.transaction_id, take);
        want := want - take;
        EXIT WHEN want = 0;
    END LOOP;
    IF want > 0 THEN
        RAISE EXCEPTION 'the points lots of account % do not cover a debit of %', NEW.account_id, NEW.amount
            USING ERRCODE = 'TB005';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER entries_move_points_lots AFTER INSERT ON entries
    FOR EACH ROW WHEN (NEW.asset = 'POINT' AND NEW.layer = 'posted')
    EXECUTE FUNCTION points_follow_entry();

ALTER TABLE accounts ADD CONSTRAINT accounts_points_not_overdrawn
    CHECK (asset <> 'POINT' OR party_id IS NULL OR credit_limit = 0);

CREATE TABLE rewards (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id  uuid NOT NULL REFERENCES communities (id),
    merchant_id   uuid NOT NULL,
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description   text CHECK (char_length(description) <= 2000),
    price_points  bigint NOT NULL CHECK (price_points BETWEEN 1 AND 1000000000),
    star_prices   jsonb NOT NULL DEFAULT '{}',
    min_star      smallint NOT NULL DEFAULT 0 CHECK (min_star BETWEEN 0 AND 5),
    stock         bigint CHECK (stock >= 0),
    held          bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    redeemed      bigint NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    limit_count   integer CHECK (limit_count BETWEEN 1 AND 1000),
    limit_period  text CHECK (limit_period IN ('day', 'week', 'month', 'quarter', 'year')),
    valid_from    timestamptz,
    valid_until   timestamptz,
    active        boolean NOT NULL DEFAULT true,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((limit_count IS NULL) = (limit_period IS NULL)),
    CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from),
    FOREIGN KEY (merchant_id, community_id) REFERENCES parties (id, community_id)
);
CREATE INDEX rewards_community ON rewards (community_id, active, created_at, id);
CREATE TRIGGER rewards_no_delete BEFORE DELETE ON rewards
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();

-- The first day (community time) of the limit period that `at` falls in.
CREATE FUNCTION reward_period_start(p_period text, p_timezone text, p_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT date_trunc(p_period, p_at AT TIME ZONE p_timezone)::date
$$;

CREATE TABLE redemption_counts (
    reward_id     uuid NOT NULL REFERENCES rewards (id),
    member_id     uuid NOT NULL,
    period_start  date NOT NULL,
    used          integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (reward_id, member_id, period_start)
);

CREATE TABLE redemptions (
    id            uuid PRIMARY KEY,
    community_id  uuid NOT NULL,
    reward_id     uuid NOT NULL REFERENCES rewards (id),
    merchant_id   uuid NOT NULL,
    member_id     uuid NOT NULL,
    star_level    smallint NOT NULL CHECK (star_level BETWEEN 0 AND 5),
    price_points  bigint NOT NULL CHECK (price_points > 0),
    status        text NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    -- 8 characters without 0/O, 1/I/L: read aloud or typed at a busy counter
    code          text NOT NULL CHECK (code ~ '^[2-9A-HJKMNP-Z]{8}$'),
    hold_id       uuid NOT NULL UNIQUE,
    resolution_id uuid UNIQUE,
    period_start  date,
    expires_at    timestamptz NOT NULL,
    token_nonce   text UNIQUE,
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_by   uuid,
    resolved_at   timestamptz,
    CHECK ((status = 'held') = (resolved_at IS NULL)),
    CHECK ((status IN ('held', 'expired')) OR resolution_id IS NOT NULL OR status = 'cancelled'),
    FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id),
    FOREIGN KEY (merchant_id, community_id) REFERENCES parties (id, community_id)
);
CREATE UNIQUE INDEX redemptions_open_code ON redemptions (community_id, code) WHERE status = 'held';
CREATE INDEX redemptions_member ON redemptions (member_id, created_at, id);
CREATE INDEX redemptions_confirmed ON redemptions (merchant_id, resolved_at) WHERE status = 'confirmed';
CREATE INDEX redemptions_open ON redemptions (community_id, expires_at) WHERE status = 'held';

-- What a redemption is never changes; its status moves once, from held.
CREATE FUNCTION redemption_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER redemptions_guard BEFORE UPDATE OR DELETE ON redemptions
    FOR EACH ROW EXECUTE FUNCTION redemption_guard();
"""

DROP = r"""
DROP TABLE IF EXISTS redemptions, redemption_counts, rewards, points_consumptions;
DROP TRIGGER IF EXISTS entries_move_points_lots ON entries;
DROP TRIGGER IF EXISTS points_lots_guard ON points_lots;
DROP TRIGGER IF EXISTS points_lots_no_truncate ON points_lots;
DROP FUNCTION IF EXISTS points_follow_entry, points_lot_guard, redemption_guard, reward_period_start, points_lot_expiry;
ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_points_not_overdrawn;
DROP INDEX IF EXISTS points_lots_open;
DROP INDEX IF EXISTS points_lots_expiring;
ALTER TABLE points_lots DROP CONSTRAINT IF EXISTS points_lots_one_per_credit;
ALTER TABLE points_lots ADD CONSTRAINT points_lots_transaction_id_key UNIQUE (transaction_id);
ALTER TABLE points_lots DROP COLUMN IF EXISTS remaining;
"""


def upgrade() -> None:
    run_script(SCHEMA)


def downgrade() -> None:
    run_script(DROP)
