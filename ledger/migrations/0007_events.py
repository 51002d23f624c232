"""The event outbox: one row per committed change of value (ledger.models.Event).

On PostgreSQL a trigger stamps every event with the id of the transaction that writes it
(the feed's visibility rule needs it, and no caller can forge it) and events are
append-only. Support and Auditor get `view_event` (the feed).
"""

import django.db.models.deletion
from django.db import migrations, models

from loyalty.db import PostgresSQL, append_only

TXID = """
CREATE OR REPLACE FUNCTION ledger_event_txid() RETURNS trigger AS $$
BEGIN
    NEW.txid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_event_txid BEFORE INSERT ON ledger_event FOR EACH ROW
    EXECUTE FUNCTION ledger_event_txid();
"""
NO_TXID = "DROP TRIGGER IF EXISTS ledger_event_txid ON ledger_event; DROP FUNCTION IF EXISTS ledger_event_txid();"


def grant_view_event(apps, schema_editor):
    """Support and Auditor read the feed (frozen here; the roles module lists it too)."""
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("ledger")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_event = Permission.objects.get(content_type__app_label="ledger", codename="view_event")
    for name in ("Support", "Auditor"):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(view_event)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_customer_event_sequence"),
        ("ledger", "0006_operation_names"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_id", models.CharField(max_length=40, unique=True)),
                ("type", models.CharField(max_length=40)),
                ("created", models.DateTimeField()),
                ("customer_sequence", models.BigIntegerField(blank=True, null=True)),
                (
                    "actor_type",
                    models.CharField(
                        choices=[("staff", "Staff"), ("partner", "Partner"), ("system", "System")],
                        max_length=8,
                    ),
                ),
                ("actor_name", models.CharField(max_length=200)),
                ("channel", models.CharField(max_length=16)),
                ("reason", models.TextField(blank=True, null=True)),
                ("request_id", models.CharField(blank=True, max_length=64, null=True)),
                ("data", models.JSONField()),
                ("txid", models.BigIntegerField(blank=True, editable=False, null=True)),
                (
                    "customer",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="accounts.customer",
                    ),
                ),
                (
                    "merchant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.merchant",
                    ),
                ),
            ],
            options={
                "ordering": ["txid", "id"],
                "indexes": [
                    models.Index(fields=["txid", "id"], name="event_feed"),
                    models.Index(fields=["merchant", "txid", "id"], name="event_merchant_feed"),
                    models.Index(fields=["type", "txid", "id"], name="event_type_feed"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("customer", "customer_sequence"),
                        name="event_one_per_customer_sequence",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("customer__isnull", True), ("customer_sequence__isnull", True)
                            ),
                            models.Q(("customer__isnull", False), ("customer_sequence__gte", 1)),
                            _connector="OR",
                        ),
                        name="event_sequence_iff_customer",
                    ),
                ],
            },
        ),
        PostgresSQL(TXID, NO_TXID),
        append_only("ledger_event"),
        migrations.RunPython(grant_view_event, migrations.RunPython.noop),
    ]
