"""Reads of merchants, stores and customers, scoped by who asks.

A partner sees only its own merchants; anything else reads as "does not exist". The partner
APIs pass the merchant ids their authentication read with the credential
(partners.identity.PartnerIdentity), so scoping costs no statement of its own.
"""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.db.models import Q

from accounts.errors import AmbiguousCustomer
from accounts.models import Customer, Store
from loyalty import rows
from loyalty.db import is_postgresql, prepared_cursor


def partner_merchant_ids(partner) -> frozenset[int]:
    """The merchants a partner may act on."""
    return frozenset(partner.merchants.values_list("id", flat=True))


@cache
def _customer_by_user_sql() -> str:
    qn = connection.ops.quote_name
    column = {name: qn(Customer._meta.get_field(name).column) for name in ("merchant", "email")}
    member = qn(Customer._meta.get_field("member_id").column)
    fields = ", ".join(qn(f.column) for f in Customer._meta.concrete_fields)
    return (
        f"SELECT {fields} FROM {qn(Customer._meta.db_table)} "  # noqa: S608 (names from _meta)
        f"WHERE {column['merchant']} = %s AND ({column['email']} = %s OR {member} = %s) LIMIT 2"
    )


def customer_for_partner(
    merchant_ids: frozenset[int], *, merchant_id: int, user: str
) -> Customer | None:
    """A customer of `merchant_id` (one of `merchant_ids`) by email (case-insensitive) or
    member id.

    Raises `AmbiguousCustomer` when the text is the email of one customer and the member id
    of another: picking either would move value on a customer the partner may not mean (an
    email typed as `M-1002` once took the credits of member `M-1002`). Emails are validated
    on write, but member ids are free text and old rows may hold anything, so the lookup
    itself refuses. Each identifier is unique per merchant: two rows are the only ambiguity.
    """
    if merchant_id not in merchant_ids or not user:
        return None
    email, member_id = user.strip().lower(), user.strip()
    if is_postgresql(connection):  # the Balance API's hot path: no query compiler
        with prepared_cursor(connection) as cursor:
            cursor.execute(_customer_by_user_sql(), [merchant_id, email, member_id])
            matches = [rows.instance(Customer, row) for row in cursor.fetchall()]
    else:
        matches = list(
            Customer.objects.filter(
                Q(email=email) | Q(member_id=member_id), merchant_id=merchant_id
            ).select_related(None)[:2]
        )
    if len(matches) > 1:
        raise AmbiguousCustomer()
    return matches[0] if matches else None


def customer_by_wallet_for_partner(partner, address: str) -> Customer | None:
    """A customer of the partner's primary merchant by wallet address, case-insensitively."""
    if not address:
        return None
    return rows.first(
        Customer, merchant_id=partner.primary_merchant_id, wallet_address=address.strip().lower()
    )


def store_for_partner(merchant_ids: frozenset[int], store_id: int) -> Store | None:
    store = rows.first(Store, id=store_id)  # by primary key, without the query compiler
    return store if store is not None and store.merchant_id in merchant_ids else None
