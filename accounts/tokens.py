"""Staff API tokens: django-rest-knox rows (a SHA-512 digest and the key's first characters,
never the key), with an expiry; the key is shown once, when it is issued."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken


@transaction.atomic
def issue(user) -> tuple[str, AuthToken]:
    """A new token for `user`, valid STAFF_TOKEN_TTL_HOURS: (key, row). Other tokens of the
    user stay valid until they expire or are revoked; the expired ones are dropped here."""
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    row, key = AuthToken.objects.create(user=user)
    return key, row


def expiry(key: str):
    """When the token `key` expires (None if it does not exist)."""
    row = AuthToken.objects.filter(digest=hash_token(key)).first()
    return row.expiry if row else None


def revoke(user) -> int:
    """Revoke every token of `user` (a revoked token is a deleted row); how many there were."""
    return AuthToken.objects.filter(user=user).delete()[0]


class StaffTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` against knox's digests.

    knox also scans the user's other tokens on every request to delete the expired ones (one
    more statement per call); here only the presented token's expiry is checked, and expired
    tokens are dropped when it is used or when the user gets a new one.
    """

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class StaffTokenScheme(OpenApiAuthenticationExtension):
    """The same OpenAPI scheme DRF's TokenAuthentication had: the wire did not change."""

    target_class = "accounts.tokens.StaffTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=settings.REST_KNOX["AUTH_HEADER_PREFIX"]
        )
