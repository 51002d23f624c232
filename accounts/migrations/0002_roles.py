"""Once created the staff groups; now empty.

The groups and their permissions are synced after every `migrate` by a post_migrate handler,
`ledger.roles.sync_roles`, derived from the corrections registry: a migration must not import
app code, and roles belong to the ledger, which accounts may not import. This migration stays
because later ones depend on it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("ledger", "0001_initial"),
        ("partners", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = []
