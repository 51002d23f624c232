"""Services for partners and their credentials."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Merchant
from loyalty.audit import audited
from loyalty.errors import InvalidInput
from partners import credentials as creds
from partners.models import Partner


def _apply(partner: Partner, credentials: creds.Credentials) -> None:
    partner.api_key_prefix = credentials.api_key[:12]
    partner.api_key_hash = creds.hash_api_key(credentials.api_key)
    partner.hmac_key = credentials.hmac_key
    partner.hmac_secret_encrypted = creds.encrypt_secret(credentials.hmac_secret)


@transaction.atomic
def partner_create(
    *,
    actor,
    channel: str,
    name: str,
    merchants: list[Merchant],
    hmac_secret: str | None = None,
    chain: str = "abstract",
    errors_as_200: bool = False,
    credentials: creds.Credentials | None = None,
) -> tuple[Partner, creds.Credentials]:
    """Create a partner with its service user; the plain credentials are returned once.

    The first merchant is the primary one (the Points API acts on it).
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("name", "must be 1 to 100 characters")
    if not merchants:
        raise InvalidInput("merchant", "a partner needs at least one merchant")
    if Partner.objects.filter(name=name).exists():
        raise InvalidInput("name", "a partner with this name exists")
    credentials = credentials or creds.generate(hmac_secret)
    user = get_user_model().objects.create(username=f"partner:{name}"[:150], is_active=True)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    partner = Partner(
        name=name,
        user=user,
        primary_merchant=merchants[0],
        chain=chain or "abstract",
        errors_as_200=errors_as_200,
    )
    _apply(partner, credentials)
    with audited(actor=actor, channel=channel, operation="partner_create"):
        partner.save()
        partner.merchants.set(merchants)
    return partner, credentials


@transaction.atomic
def partner_rotate_credentials(
    *, actor, channel: str, partner: Partner, reason: str = ""
) -> creds.Credentials:
    """Replace all of a partner's secrets; the old ones stop working at once."""
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    credentials = creds.generate()
    _apply(partner, credentials)
    with audited(
        actor=actor, channel=channel, reason=reason, operation="partner_rotate_credentials"
    ):
        partner.save()
    return credentials
