"""Services for merchants, stores, customers and staff users."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from rest_framework.authtoken.models import Token

from accounts import roles
from accounts.errors import CustomerConflict
from accounts.models import Customer, Merchant, Store
from loyalty.audit import audited
from loyalty.db import is_postgresql
from loyalty.errors import InvalidInput


def _sync_id_sequence(model) -> None:
    """After an insert with an explicit id, move PostgreSQL's identity past it."""
    if not is_postgresql(connection):
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608 - quoted table name
            f"(SELECT GREATEST(MAX(id), 1) FROM {table}))",
            [model._meta.db_table],
        )


def _name(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 200:
        raise InvalidInput("name", "must be 1 to 200 characters")
    return value


@transaction.atomic
def merchant_create(*, actor, channel: str, name: str, id: int | None = None) -> Merchant:
    with audited(actor=actor, channel=channel, operation="merchant_create"):
        merchant = Merchant.objects.create(id=id, name=_name(name))
    if id is not None:
        _sync_id_sequence(Merchant)
    return merchant


@transaction.atomic
def store_create(
    *,
    actor,
    channel: str,
    merchant: Merchant,
    name: str,
    id: int | None = None,
) -> Store:
    with audited(actor=actor, channel=channel, operation="store_create"):
        store = Store.objects.create(id=id, merchant=merchant, name=_name(name))
    if id is not None:
        _sync_id_sequence(Store)
    return store


def _normalise_customer_fields(fields: dict) -> dict:
    out = {}
    for key in ("email", "member_id", "wallet_address", "name", "status"):
        if key in fields and fields[key] is not None:
            value = str(fields[key]).strip()
            if key in ("email", "wallet_address"):
                value = value.lower()
            out[key] = value
    if "status" in out and not out["status"]:
        raise InvalidInput("status", "must not be empty")
    return out


@transaction.atomic
def customer_create(*, actor, channel: str, merchant: Merchant, **fields) -> Customer:
    data = _normalise_customer_fields(fields)
    if not (data.get("email") or data.get("member_id") or data.get("wallet_address")):
        raise InvalidInput("email", "a customer needs an email, a member id or a wallet address")
    try:
        with (
            transaction.atomic(),
            audited(actor=actor, channel=channel, operation="customer_create"),
        ):
            return Customer.objects.create(merchant=merchant, **data)
    except IntegrityError as exc:
        raise CustomerConflict() from exc


@transaction.atomic
def customer_update(*, actor, channel: str, customer: Customer, **fields) -> Customer:
    """Edit a customer's identity fields; balance and points move only through the ledger."""
    data = _normalise_customer_fields(fields)
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    changed = [k for k, v in data.items() if getattr(customer, k) != v]
    for key in changed:
        setattr(customer, key, data[key])
    if changed:
        try:
            with (
                transaction.atomic(),
                audited(actor=actor, channel=channel, operation="customer_update"),
            ):
                customer.save(update_fields=changed)
        except IntegrityError as exc:
            raise CustomerConflict() from exc
    return customer


@transaction.atomic
def staff_create(*, username: str, role: str, password: str | None = None):
    """Create (or update) a staff user in a role; returns (user, API token key)."""
    if role not in roles.ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(roles.ROLES)}")
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    user.is_staff = True
    user.is_superuser = role == roles.ADMIN
    if password:
        user.set_password(password)
    elif not user.has_usable_password():
        user.set_unusable_password()
    user.save()
    user.groups.clear()
    if role != roles.ADMIN:
        user.groups.add(Group.objects.get(name=roles.ROLES[role]))
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key
