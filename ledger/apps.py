from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from ledger.roles import sync_roles

        # Staff groups follow ledger.roles after every migrate (why not a migration: there).
        post_migrate.connect(sync_roles, sender=self, dispatch_uid="ledger.roles.sync_roles")
