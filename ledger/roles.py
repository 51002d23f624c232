"""Staff roles: Django groups, their permissions (corrections from the registry), staff users.

The groups are synced after every `migrate` by `sync_roles`, a post_migrate handler (see
`LedgerConfig.ready`), not by a data migration: a migration must not import app code, and a
frozen copy of the permission list in a migration would drift from the registry the first
time a correction is added. After `migrate` (and after every test flush, which sends
post_migrate too) each group has exactly the permissions listed here.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import tokens
from ledger import corrections
from loyalty.errors import InvalidInput

SUPPORT = "Support"
AUDITOR = "Auditor"
SUPERVISOR = "Supervisor"
ADMIN = "admin"
ROLES = {"support": SUPPORT, "auditor": AUDITOR, "supervisor": SUPERVISOR, "admin": ADMIN}

AUDITED_MODELS = [
    ("accounts", "merchant"),
    ("accounts", "store"),
    ("accounts", "customer"),
    ("ledger", "stampcard"),
    ("ledger", "stamp"),
    ("ledger", "balanceupdate"),
    ("ledger", "pointtransaction"),
    ("partners", "partner"),
    ("ledger", "approval"),
    ("ledger", "approvalpolicy"),
    ("ledger", "stafflimit"),
    ("ledger", "correctionbatch"),
]

VIEW_EVERYTHING = [f"{app}.view_{model}" for app, model in AUDITED_MODELS] + [
    f"{app}.view_historical{model}" for app, model in AUDITED_MODELS
]

GROUP_PERMISSIONS = {
    SUPPORT: [
        *VIEW_EVERYTHING,
        *corrections.PERMISSIONS,
        "accounts.add_customer",
        "accounts.change_customer",
        "ledger.add_stampcard",
        "ledger.view_event",
        "ledger.add_correctionbatch",  # upload and apply bulk corrections (their own rows)
    ],
    AUDITOR: [*VIEW_EVERYTHING, "ledger.view_event"],
}
# Support's permissions plus deciding approvals (README: Approvals and staff limits).
GROUP_PERMISSIONS[SUPERVISOR] = [*GROUP_PERMISSIONS[SUPPORT], "ledger.approve_correction"]


def sync_roles(*, using: str = "default", **kwargs) -> None:
    """Create the groups and give them exactly their permissions (idempotent)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    # The permissions of every app, not only of the app this signal is for.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    for group_name, perms in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=group_name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(
                Permission.objects.using(using).get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        group.permissions.set(wanted)


@transaction.atomic
def staff_create(
    *, username: str, role: str, password: str | None = None, check_password: bool = True
):
    """Create (or update) a staff user in a role; returns (user, a new API token key).

    A password must pass AUTH_PASSWORD_VALIDATORS; only the public demo logins of
    `seed_demo` with DEBUG on pass `check_password=False`.
    """
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    User = get_user_model()
    if password and check_password:
        # AUTH_PASSWORD_VALIDATORS, against the user as it will be (name similarity too).
        try:
            validate_password(
                password, User.objects.filter(username=username).first() or User(username=username)
            )
        except ValidationError as exc:
            raise InvalidInput("password", " ".join(exc.messages)) from None
    user, _ = User.objects.get_or_create(username=username)
    user.is_staff = True
    user.is_superuser = role == ADMIN
    if password:
        user.set_password(password)
    elif not user.has_usable_password():
        user.set_unusable_password()
    user.save()
    user.groups.clear()
    if role != ADMIN:
        user.groups.add(Group.objects.get(name=ROLES[role]))
    key, _row = tokens.issue(user)
    return user, key
