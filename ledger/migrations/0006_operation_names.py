"""History rows written before operation names equalled service names get the service names,
so the audit log, the dashboard and the corrections registry read one vocabulary.

History tables are append-only by a PostgreSQL trigger (0002_guards, `<table>_append_only`):
on PostgreSQL this migration disables that trigger around its one UPDATE per table and enables
it again, all inside the migration's transaction (a failure leaves the trigger as it was).
SQLite has no trigger. The names are frozen here: a migration must not import app code.
"""

from django.db import migrations

RENAMES = {
    "stamp_delete": "stamp_deactivate",
    "balance_cancel": "balance_update_cancel",
    "points_deduct": "point_deduct",
    "points_revert": "point_deduction_revert",
    "points_confirm": "point_deduction_confirm",
    "partner_rotate": "partner_rotate_credentials",
}

HISTORICAL_MODELS = [
    ("accounts", "HistoricalMerchant"),
    ("accounts", "HistoricalStore"),
    ("accounts", "HistoricalCustomer"),
    ("ledger", "HistoricalStampCard"),
    ("ledger", "HistoricalStamp"),
    ("ledger", "HistoricalBalanceUpdate"),
    ("ledger", "HistoricalPointTransaction"),
    ("partners", "HistoricalPartner"),
]


def rename(apps, schema_editor, renames=RENAMES) -> None:
    connection = schema_editor.connection
    qn = connection.ops.quote_name
    postgresql = connection.vendor == "postgresql"
    cases = " ".join("WHEN %s THEN %s" for _ in renames)
    marks = ", ".join("%s" for _ in renames)
    params = [value for pair in renames.items() for value in pair] + list(renames)
    with connection.cursor() as cursor:
        if postgresql:
            # ALTER TABLE refuses a table with deferred trigger events still queued in this
            # transaction (rows written earlier in it): run those checks now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for app_label, model_name in HISTORICAL_MODELS:
            table = apps.get_model(app_label, model_name)._meta.db_table
            trigger = qn(f"{table}_append_only")
            if postgresql:
                cursor.execute(f"ALTER TABLE {qn(table)} DISABLE TRIGGER {trigger}")
            cursor.execute(
                f"UPDATE {qn(table)} SET operation = CASE operation {cases} END "  # noqa: S608
                f"WHERE operation IN ({marks})",
                params,
            )
            if postgresql:
                cursor.execute(f"ALTER TABLE {qn(table)} ENABLE TRIGGER {trigger}")


def rename_back(apps, schema_editor) -> None:
    rename(apps, schema_editor, {new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_history_version_index"),
        ("ledger", "0005_dashboard_indexes"),
        ("partners", "0003_history_version_index"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
