"""Keys that distribute by community (Citus-ready).

When one PostgreSQL is not enough, the deployment moves to Citus and distributes its
tables by community (``timebank/distribution.py`` says which table goes how, and
``docs/operations.md`` gives the commands). Citus can only hold a key that contains the
distribution column: a primary key or unique key without it cannot be checked on one
shard, and a foreign key between two distributed tables must join them on it. So:

* every community-owned table's primary key and unique keys now end with
  ``community_id`` (``id`` stays first, so a look-up by id alone still uses the key's
  index), and every foreign key between them carries ``community_id`` on both sides;
* four tables that had no ``community_id`` get it, filled from their parent:
  ``points_consumptions`` (the lot's), ``redemption_counts`` (the reward's),
  ``sign_in_links`` and ``web_sessions`` (the person's); ``settlement_parts`` gets its
  settlement's ``district_id``;
* the district's own tables (``crossings``, ``district_settlements``) are keyed by their
  ``district_id``, the community id of the district's ledger, so they live beside it;
* a login is unique in the whole deployment, which a key on the distributed ``people``
  cannot say: ``logins`` (a reference table, one row per login) holds it, and each
  person with a login points at its row (login, community, person), so two people can
  never share one;
* the few references that join two communities (a crossing's parts in the sending and
  receiving ledgers, a redemption by another community's member, the district's and
  the family links' parties, a settlement part's settlement) stay foreign keys here;
  on Citus they are dropped (the list is ``distribution.CROSS_SHARD_REFERENCES``) and
  ``timebank audit`` checks them instead.

The keys are stated below, each before and after, so that the downgrade puts back
exactly what 0011 had. Nothing else changes: the same rows, the same rules (every new
key says what the old one said, since each of these rows' parents is in the same
community, which the new foreign keys now also hold).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import importlib

from timebank.migrations.helpers import run_script

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# (table, column, parent table, parent column): columns added and filled from a parent
NEW_COLUMNS = [
    ("points_consumptions", "community_id", "points_lots", "lot_id", "community_id"),
    ("redemption_counts", "community_id", "rewards", "reward_id", "community_id"),
    ("sign_in_links", "community_id", "people", "person_id", "community_id"),
    ("web_sessions", "community_id", "people", "person_id", "community_id"),
    ("settlement_parts", "district_id", "district_settlements", "settlement_id", "district_id"),
]

# Foreign keys: (table, name, before, after). ``None`` before: new; ``None`` after: gone.
# fmt: off
FOREIGN_KEYS = [
    ("accounts", "accounts_party_id_community_id_fkey",
     "FOREIGN KEY (party_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (party_id, community_id) REFERENCES parties (id, community_id)"),
    ("activities", "activities_organisation_id_community_id_fkey",
     "FOREIGN KEY (organisation_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (organisation_id, community_id) REFERENCES parties (id, community_id)"),
    ("activity_signups", "activity_signups_activity_id_fkey",
     "FOREIGN KEY (activity_id) REFERENCES activities (id)",
     "FOREIGN KEY (activity_id, community_id) REFERENCES activities (id, community_id)"),
    ("activity_signups", "activity_signups_member_id_community_id_fkey",
     "FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)"),
    ("activity_signups", "activity_signups_record_id_fkey",
     "FOREIGN KEY (record_id) REFERENCES service_records (id)",
     "FOREIGN KEY (record_id, community_id) REFERENCES service_records (id, community_id)"),
    ("api_keys", "api_keys_created_by_fkey",
     "FOREIGN KEY (created_by) REFERENCES api_keys (id)",
     "FOREIGN KEY (created_by, community_id) REFERENCES api_keys (id, community_id)"),
    ("api_keys", "api_keys_subject_id_community_id_fkey",
     "FOREIGN KEY (subject_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (subject_id, community_id) REFERENCES parties (id, community_id)"),
    ("crossings", "crossings_district_transaction_id_fkey",
     "FOREIGN KEY (district_transaction_id) REFERENCES transactions (id)",
     "FOREIGN KEY (district_transaction_id, district_id) REFERENCES transactions (id, community_id)"),
    ("crossings", "crossings_from_account_id_fkey",
     "FOREIGN KEY (from_account_id) REFERENCES accounts (id)",
     "FOREIGN KEY (from_account_id, from_community_id) REFERENCES accounts (id, community_id)"),
    ("crossings", "crossings_from_transaction_id_fkey",
     "FOREIGN KEY (from_transaction_id) REFERENCES transactions (id)",
     "FOREIGN KEY (from_transaction_id, from_community_id) REFERENCES transactions (id, community_id)"),
    ("crossings", "crossings_to_account_id_fkey",
     "FOREIGN KEY (to_account_id) REFERENCES accounts (id)",
     "FOREIGN KEY (to_account_id, to_community_id) REFERENCES accounts (id, community_id)"),
    ("crossings", "crossings_to_transaction_id_fkey",
     "FOREIGN KEY (to_transaction_id) REFERENCES transactions (id)",
     "FOREIGN KEY (to_transaction_id, to_community_id) REFERENCES transactions (id, community_id)"),
    ("district_members", "district_members_party_id_district_id_fkey",
     "FOREIGN KEY (party_id, district_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (party_id, district_id) REFERENCES parties (id, community_id)"),
    ("district_settlements", "district_settlements_district_transaction_id_fkey",
     "FOREIGN KEY (district_transaction_id) REFERENCES transactions (id)",
     "FOREIGN KEY (district_transaction_id, district_id) REFERENCES transactions (id, community_id)"),
    ("family_links", "family_links_member_a_community_a_fkey",
     "FOREIGN KEY (member_a, community_a) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (member_a, community_a) REFERENCES parties (id, community_id)"),
    ("family_links", "family_links_member_b_community_b_fkey",
     "FOREIGN KEY (member_b, community_b) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (member_b, community_b) REFERENCES parties (id, community_id)"),
    ("notifications", "notifications_lot_id_fkey",
     "FOREIGN KEY (lot_id) REFERENCES points_lots (id)",
     "FOREIGN KEY (lot_id, community_id) REFERENCES points_lots (id, community_id)"),
    ("notifications", "notifications_member_id_community_id_fkey",
     "FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)"),
    ("people", "people_subject_id_fkey",
     "FOREIGN KEY (subject_id) REFERENCES parties (id)",
     "FOREIGN KEY (subject_id, community_id) REFERENCES parties (id, community_id)"),
    ("people", "people_login_fkey",
     None,
     "FOREIGN KEY (login, community_id, id) REFERENCES logins (login, community_id, person_id)"),
    ("points_consumptions", "points_consumptions_lot_id_fkey",
     "FOREIGN KEY (lot_id) REFERENCES points_lots (id)",
     "FOREIGN KEY (lot_id, community_id) REFERENCES points_lots (id, community_id)"),
    ("points_lots", "points_lots_record_id_fkey",
     "FOREIGN KEY (record_id) REFERENCES service_records (id)",
     "FOREIGN KEY (record_id, community_id) REFERENCES service_records (id, community_id)"),
    ("redemption_counts", "redemption_counts_reward_id_fkey",
     "FOREIGN KEY (reward_id) REFERENCES rewards (id)",
     "FOREIGN KEY (reward_id, community_id) REFERENCES rewards (id, community_id)"),
    ("redemptions", "redemptions_member_fkey",
     "FOREIGN KEY (member_id, member_community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (member_id, member_community_id) REFERENCES parties (id, community_id)"),
    ("redemptions", "redemptions_merchant_id_community_id_fkey",
     "FOREIGN KEY (merchant_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (merchant_id, community_id) REFERENCES parties (id, community_id)"),
    ("redemptions", "redemptions_reward_id_fkey",
     "FOREIGN KEY (reward_id) REFERENCES rewards (id)",
     "FOREIGN KEY (reward_id, community_id) REFERENCES rewards (id, community_id)"),
    ("rewards", "rewards_merchant_id_community_id_fkey",
     "FOREIGN KEY (merchant_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (merchant_id, community_id) REFERENCES parties (id, community_id)"),
    ("service_records", "service_records_member_id_community_id_fkey",
     "FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (member_id, community_id) REFERENCES parties (id, community_id)"),
    ("service_records", "service_records_organisation_id_community_id_fkey",
     "FOREIGN KEY (organisation_id, community_id) REFERENCES parties (id, community_id)",
     "FOREIGN KEY (organisation_id, community_id) REFERENCES parties (id, community_id)"),
    ("service_reversals", "service_reversals_record_id_fkey",
     "FOREIGN KEY (record_id) REFERENCES service_records (id)",
     "FOREIGN KEY (record_id, community_id) REFERENCES service_records (id, community_id)"),
    ("settlement_parts", "settlement_parts_settlement_id_fkey",
     "FOREIGN KEY (settlement_id) REFERENCES district_settlements (id)",
     "FOREIGN KEY (settlement_id, district_id) REFERENCES district_settlements (id, district_id)"),
    ("settlement_parts", "settlement_parts_transaction_id_fkey",
     "FOREIGN KEY (transaction_id) REFERENCES transactions (id)",
     "FOREIGN KEY (transaction_id, community_id) REFERENCES transactions (id, community_id)"),
    ("sign_in_links", "sign_in_links_person_id_fkey",
     "FOREIGN KEY (person_id) REFERENCES people (id)",
     "FOREIGN KEY (person_id, community_id) REFERENCES people (id, community_id)"),
    ("transactions", "transactions_pending_id_fkey",
     "FOREIGN KEY (pending_id) REFERENCES transactions (id)",
     "FOREIGN KEY (pending_id, community_id) REFERENCES transactions (id, community_id)"),
    ("transactions", "transactions_reverses_id_fkey",
     "FOREIGN KEY (reverses_id) REFERENCES transactions (id)",
     "FOREIGN KEY (reverses_id, community_id) REFERENCES transactions (id, community_id)"),
    ("web_sessions", "web_sessions_person_id_fkey",
     "FOREIGN KEY (person_id) REFERENCES people (id)",
     "FOREIGN KEY (person_id, community_id) REFERENCES people (id, community_id)"),
]
# fmt: on

# Primary and unique keys: (table, name, before, after), as constraints.
# fmt: off
KEYS = [
    ("accounts", "accounts_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("activities", "activities_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("activity_signups", "activity_signups_pkey",
     "PRIMARY KEY (activity_id, member_id)", "PRIMARY KEY (activity_id, member_id, community_id)"),
    ("activity_signups", "activity_signups_record_id_key",
     "UNIQUE (record_id)", "UNIQUE (record_id, community_id)"),
    ("api_keys", "api_keys_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    # a key's secret has 256 random bits: unique per community is unique everywhere
    ("api_keys", "api_keys_key_hash_key", "UNIQUE (key_hash)", "UNIQUE (key_hash, community_id)"),
    ("crossings", "crossings_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, district_id)"),
    ("crossings", "crossings_district_transaction_id_key",
     "UNIQUE (district_transaction_id)", "UNIQUE (district_transaction_id, district_id)"),
    # a community is in one district at most, so unique in the district is unique everywhere
    ("crossings", "crossings_from_transaction_id_key",
     "UNIQUE (from_transaction_id)", "UNIQUE (from_transaction_id, district_id)"),
    ("crossings", "crossings_to_transaction_id_key",
     "UNIQUE (to_transaction_id)", "UNIQUE (to_transaction_id, district_id)"),
    ("district_settlements", "district_settlements_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, district_id)"),
    ("district_settlements", "district_settlements_district_transaction_id_key",
     "UNIQUE (district_transaction_id)", "UNIQUE (district_transaction_id, district_id)"),
    ("entries", "entries_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("ledger_rollups", "ledger_rollups_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("log_leaves", "log_leaves_transaction_id_key",
     "UNIQUE (transaction_id)", "UNIQUE (transaction_id, community_id)"),
    ("notifications", "notifications_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("notifications", "notifications_lot_id_threshold_days_key",
     "UNIQUE (lot_id, threshold_days)", "UNIQUE (lot_id, threshold_days, community_id)"),
    ("parties", "parties_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("parties", "parties_id_community_id_key", "UNIQUE (id, community_id)", None),  # now the primary key
    ("people", "people_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    # unique in the deployment through ``logins`` (people_login_fkey)
    ("people", "people_login_key", "UNIQUE (login)", "UNIQUE (login, community_id)"),
    ("points_consumptions", "points_consumptions_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("points_lots", "points_lots_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("points_lots", "points_lots_one_per_credit",
     "UNIQUE (transaction_id, account_id)", "UNIQUE (transaction_id, account_id, community_id)"),
    ("redemption_counts", "redemption_counts_pkey",
     "PRIMARY KEY (reward_id, member_id, period_start)",
     "PRIMARY KEY (reward_id, member_id, period_start, community_id)"),
    ("redemptions", "redemptions_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    # a hold is made for its one redemption, in the same database transaction
    ("redemptions", "redemptions_hold_id_key", "UNIQUE (hold_id)", "UNIQUE (hold_id, community_id)"),
    ("redemptions", "redemptions_resolution_id_key",
     "UNIQUE (resolution_id)", "UNIQUE (resolution_id, community_id)"),
    ("redemptions", "redemptions_token_nonce_key", "UNIQUE (token_nonce)", "UNIQUE (token_nonce, community_id)"),
    ("rewards", "rewards_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("service_records", "service_records_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("service_records", "service_records_transaction_id_key",
     "UNIQUE (transaction_id)", "UNIQUE (transaction_id, community_id)"),
    ("service_reversals", "service_reversals_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("service_reversals", "service_reversals_transaction_id_key",
     "UNIQUE (transaction_id)", "UNIQUE (transaction_id, community_id)"),
    ("settlement_parts", "settlement_parts_transaction_id_key",
     "UNIQUE (transaction_id)", "UNIQUE (transaction_id, community_id)"),
    ("sign_in_links", "sign_in_links_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("sign_in_links", "sign_in_links_token_hash_key", "UNIQUE (token_hash)", "UNIQUE (token_hash, community_id)"),
    ("transactions", "transactions_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("web_sessions", "web_sessions_pkey", "PRIMARY KEY (id)", "PRIMARY KEY (id, community_id)"),
    ("web_sessions", "web_sessions_token_hash_key", "UNIQUE (token_hash)", "UNIQUE (token_hash, community_id)"),
]
# fmt: on

# Partial unique indexes: (name, before, after)
# fmt: off
UNIQUE_INDEXES = [
    ("accounts_party_asset",
     "ON accounts (party_id, asset) WHERE party_id IS NOT NULL",
     "ON accounts (party_id, asset, community_id) WHERE party_id IS NOT NULL"),
    ("service_records_external_ref",
     "ON service_records (organisation_id, external_ref) WHERE external_ref IS NOT NULL",
     "ON service_records (organisation_id, external_ref, community_id) WHERE external_ref IS NOT NULL"),
    ("service_reversals_one_open",
     "ON service_reversals (record_id) WHERE status = 'requested'",
     "ON service_reversals (record_id, community_id) WHERE status = 'requested'"),
    ("service_reversals_one_approved",
     "ON service_reversals (record_id) WHERE status = 'approved'",
     "ON service_reversals (record_id, community_id) WHERE status = 'approved'"),
    ("transactions_resolves_once",
     "ON transactions (pending_id) WHERE pending_id IS NOT NULL",
     "ON transactions (pending_id, community_id) WHERE pending_id IS NOT NULL"),
    ("transactions_reversed_once",
     "ON transactions (reverses_id) WHERE reverses_id IS NOT NULL",
     "ON transactions (reverses_id, community_id) WHERE reverses_id IS NOT NULL"),
]
# fmt: on


def _points_follow_entry(keyed: bool) -> str:
    """0004's trigger function that moves the points lots; ``keyed``: with the two changes
    the new keys need (the lots' conflict target names ``community_id``; a consumption is
    written with its community, the entry's)."""
    points = importlib.import_module("timebank.migrations.versions.0004_points_and_redemption")
    body = points.SCHEMA[points.SCHEMA.index("CREATE FUNCTION points_follow_entry()") :]
    body = body[: body.index("$$;") + 3].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if not keyed:
        return body
    changes = {
        "ON CONFLICT (transaction_id, account_id) DO UPDATE": "ON CONFLICT (transaction_id, account_id, community_id) DO UPDATE",
        "INSERT INTO points_consumptions (lot_id, transaction_id, points)\n                VALUES (lot.lot_id,": (
            "INSERT INTO points_consumptions (community_id, lot_id, transaction_id, points)\n"
            "                VALUES (NEW.community_id, lot.lot_id,"
        ),
        "INSERT INTO points_consumptions (lot_id, transaction_id, points) VALUES (lot.id,": (
            "INSERT INTO points_consumptions (community_id, lot_id, transaction_id, points)"
            " VALUES (NEW.community_id, lot.id,"
        ),
    }
    for old, new in changes.items():
        assert body.count(old) == 1, old
        body = body.replace(old, new)
    return body


LOGINS = r"""
-- One row per login in the deployment (a reference table on Citus): its primary key is
-- what keeps a login unique across communities.
CREATE TABLE logins (
    login        text PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    person_id    uuid NOT NULL,
    CONSTRAINT logins_owner UNIQUE (login, community_id, person_id)
);
INSERT INTO logins (login, community_id, person_id)
SELECT login, community_id, id FROM people WHERE login IS NOT NULL;
"""


def _fill_columns() -> str:
    out = []
    for table, column, parent, via, parent_column in NEW_COLUMNS:
        out.append(
            f"ALTER TABLE {table} ADD COLUMN {column} uuid;\n"
            f"ALTER TABLE {table} DISABLE TRIGGER USER;\n"  # some are append-only
            f"UPDATE {table} t SET {column} = p.{parent_column} FROM {parent} p WHERE p.id = t.{via};\n"
            f"ALTER TABLE {table} ENABLE TRIGGER USER;\n"
            f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;"
        )
    return "\n".join(out)


def _swap(which: int) -> str:
    """The keys as they were (which=2: 'before') or as they become (which=3: 'after')."""
    drop, add = [], []
    for table, name, *states in FOREIGN_KEYS:
        if states[1 - (which - 2)] is not None:  # the other state's key exists now
            drop.append(f"ALTER TABLE {table} DROP CONSTRAINT {name};")
        if states[which - 2] is not None:
            add.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {states[which - 2]};")
    keys_drop, keys_add = [], []
    for table, name, *states in KEYS:
        if states[1 - (which - 2)] is not None:
            keys_drop.append(f"ALTER TABLE {table} DROP CONSTRAINT {name};")
        if states[which - 2] is not None:
            keys_add.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {states[which - 2]};")
    indexes = []
    for name, *states in UNIQUE_INDEXES:
        indexes.append(f"DROP INDEX {name};\nCREATE UNIQUE INDEX {name} {states[which - 2]};")
    # foreign keys first (they hang on the keys' indexes), then the keys, then back
    return "\n".join(drop + keys_drop + keys_add + indexes + add)


def upgrade() -> None:
    run_script(_fill_columns() + "\n" + LOGINS + "\n" + _swap(3) + "\n" + _points_follow_entry(keyed=True))


def downgrade() -> None:
    columns = "\n".join(f"ALTER TABLE {table} DROP COLUMN {column};" for table, column, *_ in NEW_COLUMNS)
    run_script(_swap(2) + "\nDROP TABLE logins;\n" + columns + "\n" + _points_follow_entry(keyed=False))
