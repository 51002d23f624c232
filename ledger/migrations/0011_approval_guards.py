"""PostgreSQL triggers for approvals: a request is never deleted, what it asks for never
edited, and once decided it stays decided; the approvals' history tables are append-only
(as 0002_guards does for the ledger)."""

from django.db import migrations

from loyalty.db import append_only, frozen_columns, no_delete

# fmt: off
REQUEST = ["kind", "merchant_id", "target_model", "target_id", "size", "amount", "reason",
           "requested_by_id", "channel", "held_because", "created", "expires_at", "preview"]
DECISION = ["status", "decided_by_id", "decided_at", "decision_reason", "result"]
# fmt: on


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_supervisor_role")]

    operations = [
        *[
            append_only(table)
            for table in (
                "ledger_historicalapproval",
                "ledger_historicalapprovalpolicy",
                "ledger_historicalstafflimit",
            )
        ],
        no_delete("ledger_approval"),
        frozen_columns("ledger_approval", REQUEST),
        frozen_columns(
            "ledger_approval", DECISION, when="OLD.status <> 'pending'", suffix="decided_once"
        ),
    ]
