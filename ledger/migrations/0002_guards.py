"""PostgreSQL triggers: ledger rows are never deleted and their amounts and owners never
edited; history rows are never updated or deleted (the README's ledger invariant 4)."""

from django.db import migrations

from loyalty.db import append_only, forbid_function, frozen_columns, no_delete

HISTORY_TABLES = [
    "accounts_historicalmerchant",
    "accounts_historicalstore",
    "accounts_historicalcustomer",
    "ledger_historicalstampcard",
    "ledger_historicalstamp",
    "ledger_historicalbalanceupdate",
    "ledger_historicalpointtransaction",
    "partners_historicalpartner",
]

UNDELETABLE_TABLES = [
    "accounts_merchant",
    "accounts_store",
    "accounts_customer",
    "ledger_stampcard",
    "ledger_stamp",
    "ledger_balanceupdate",
    "ledger_pointtransaction",
    "partners_partner",
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("partners", "0001_initial"),
        ("ledger", "0001_initial"),
    ]

    operations = [
        forbid_function(),
        *[append_only(table) for table in HISTORY_TABLES],
        *[no_delete(table) for table in UNDELETABLE_TABLES],
        frozen_columns(
            "ledger_balanceupdate",
            ["customer_id", "merchant_id", "store_id", "type", "effect", "amount",
             "balance_after", "reason", "created"],
        ),
        frozen_columns(
            "ledger_balanceupdate",
            ["status", "canceled_at", "canceled_by_id", "cancel_reason"],
            when="OLD.status = 'Canceled'",
            suffix="cancel_once",
        ),
        frozen_columns(
            "ledger_pointtransaction",
            ["customer_id", "merchant_id", "partner_id", "kind", "points", "points_after",
             "redemption_id", "partner_transaction_id", "reverts_id", "reason", "created"],
        ),
        frozen_columns(
            "ledger_stamp",
            ["merchant_id", "card_id", "customer_id", "max_stamps", "created"],
        ),
        frozen_columns(
            "ledger_stamp", ["deleted_at"], when="OLD.deleted_at IS NOT NULL", suffix="stays_deleted"
        ),
        frozen_columns("accounts_customer", ["merchant_id"]),
        frozen_columns("ledger_stampcard", ["merchant_id", "max_stamps"]),
    ]
