"""The Supervisor group (Support's permissions plus approving corrections).

Only the empty group: its permissions are synced after every `migrate` by
`ledger.roles.sync_roles` (see accounts/migrations/0002_roles.py for why).
"""

from django.db import migrations


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).get_or_create(name="Supervisor")


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_approvals"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
