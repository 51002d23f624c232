"""Staff roles: Django groups and their permissions, synced by a data migration."""

SUPPORT = "Support"
AUDITOR = "Auditor"
ADMIN = "admin"
ROLES = {"support": SUPPORT, "auditor": AUDITOR, "admin": ADMIN}

AUDITED_MODELS = [
    ("accounts", "merchant"),
    ("accounts", "store"),
    ("accounts", "customer"),
    ("ledger", "stampcard"),
    ("ledger", "stamp"),
    ("ledger", "balanceupdate"),
    ("ledger", "pointtransaction"),
    ("partners", "partner"),
]

VIEW_EVERYTHING = [f"{app}.view_{model}" for app, model in AUDITED_MODELS] + [
    f"{app}.view_historical{model}" for app, model in AUDITED_MODELS
]

CORRECTIONS = [
    "ledger.remove_stamp",
    "ledger.cancel_balanceupdate",
    "ledger.revert_pointtransaction",
    "accounts.adjust_balance_customer",
    "accounts.adjust_points_customer",
]

GROUP_PERMISSIONS = {
    SUPPORT: [
        *VIEW_EVERYTHING,
        *CORRECTIONS,
        "accounts.add_customer",
        "accounts.change_customer",
        "ledger.add_stampcard",
        "ledger.view_event",
    ],
    AUDITOR: [*VIEW_EVERYTHING, "ledger.view_event"],
}


def sync_roles(apps, schema_editor=None) -> None:
    """Create the groups and give them exactly their permissions (idempotent)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            # A permission of a model that a later migration creates (ledger.view_event):
            # that migration grants it.
            if permission is not None:
                wanted.append(permission)
        group.permissions.set(wanted)
