"""Drop DRF authtoken's table: its staff API keys were stored in plain text and never expired.

They cannot be hashed in place into usable knox tokens (knox keys have another shape), and
keeping them would keep the plain keys in the database. Staff get new tokens with
`manage.py issue_token USERNAME` (or `create_staff`). The migration records of the removed
app go too, so re-adding it later would create its table afresh.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_history_version_index"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunSQL(
            [
                "DROP TABLE IF EXISTS authtoken_token",
                "DELETE FROM django_migrations WHERE app = 'authtoken'",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
