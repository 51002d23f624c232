"""DRF authentication of partners: APIKey (Stamp API), Token/Bearer (Balance API) and the
Points API's HMAC headers. Each resolves to (partner's service user, PartnerIdentity), so
history names the partner and the views read the partner's merchants from `request.auth`;
secrets are compared in constant time and never logged."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.selectors import partner_merchant_ids
from loyalty import rows
from loyalty.db import is_postgresql, prepared_cursor
from loyalty.http.body import json_body, raw_body
from partners import credentials, signing
from partners.identity import PartnerIdentity
from partners.models import Partner, SignedRequestId


@cache
def _partner_query(column: str) -> str:
    qn = connection.ops.quote_name
    user_model = get_user_model()
    columns = [f"p.{qn(f.column)}" for f in Partner._meta.concrete_fields]
    columns += [f"u.{qn(f.column)}" for f in user_model._meta.concrete_fields]
    through = Partner.merchants.through._meta
    merchant, partner = (qn(through.get_field(n).column) for n in ("merchant", "partner"))
    merchant_ids = (
        f"ARRAY(SELECT m.{merchant} FROM {qn(through.db_table)} m WHERE m.{partner} = p.id)"  # noqa: S608
    )
    user_id = qn(Partner._meta.get_field("user").column)
    key = qn(Partner._meta.get_field(column).column)
    sql = (
        f"SELECT {', '.join(columns)}, {merchant_ids} "  # noqa: S608 (names from _meta)
        f"FROM {qn(Partner._meta.db_table)} p JOIN {qn(user_model._meta.db_table)} u "
        f"ON u.{qn(user_model._meta.pk.column)} = p.{user_id} "
        f"WHERE p.{key} = %s AND p.active AND u.is_active"
    )
    return sql


def active_partner(column: str, value: str) -> PartnerIdentity | None:
    """The active partner whose `column` is `value`, with its service user and its merchant
    ids, in one statement (every partner request starts here)."""
    if not is_postgresql(connection):  # the SQLite demo: the ORM (partner, its merchants)
        partner = (
            Partner.objects.select_related("user")
            .filter(**{column: value, "active": True, "user__is_active": True})
            .first()
        )
        return None if partner is None else PartnerIdentity(partner, partner_merchant_ids(partner))
    with prepared_cursor(connection) as cursor:
        cursor.execute(_partner_query(column), [value])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(Partner._meta.concrete_fields)
    partner = rows.instance(Partner, row[:split])
    partner.user = rows.instance(get_user_model(), row[split:-1])
    return PartnerIdentity(partner, frozenset(row[-1]))


def partner_by_api_key(api_key: str) -> PartnerIdentity | None:
    digest = credentials.hash_api_key(api_key)
    identity = active_partner("api_key_hash", digest)
    # The lookup is by hash; the comparison below keeps the final check constant-time.
    if identity is None or not credentials.api_key_matches(api_key, identity.partner.api_key_hash):
        return None
    return identity


class _KeywordKeyAuthentication(BaseAuthentication):
    keywords: tuple[str, ...] = ()

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].decode("latin-1").lower() not in {k.lower() for k in self.keywords}:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        identity = partner_by_api_key(key)
        if identity is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return identity.user, identity

    def authenticate_header(self, request) -> str:
        return self.keywords[0]


class APIKeyAuthentication(_KeywordKeyAuthentication):
    """`Authorization: APIKey <key>` (the Stamp API)."""

    keywords = ("APIKey",)


class PartnerTokenAuthentication(_KeywordKeyAuthentication):
    """`Authorization: Token <key>` or `Bearer <key>` (the Balance API)."""

    keywords = ("Token", "Bearer")


class PointsAuthError(exceptions.APIException):
    """A Points API refusal with the contract's errorCode."""

    def __init__(self, error_code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.status_code = status
        self.error_code = error_code


class KnownCredentialRefusal(exceptions.APIException):
    """A refusal (`error`) of a request whose credential was found by its key: its signature,
    freshness, request id or body failed. `partner` is that credential, whose settings (errors
    as HTTP 200) the answer follows, though the request is not authenticated."""

    def __init__(self, error: exceptions.APIException, partner: Partner) -> None:
        super().__init__(error.detail, error.default_code)
        self.status_code = error.status_code
        self.error, self.partner = error, partner


def uuid7_time(value: str) -> dt.datetime | None:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    if parsed.version != 7 or str(parsed) != value.lower():
        return None
    millis = parsed.int >> 80
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)


def remember_request_id(partner: Partner, request_id: str) -> bool:
    """Record a request id as used; False when it was used before (a replay).

    Committed at once, outside the request's transaction: a request refused later (say for
    insufficient points) has still spent its id, as the contract wants.
    """
    table = connection.ops.quote_name(SignedRequestId._meta.db_table)
    with prepared_cursor(connection) as cursor:
        cursor.execute(
            f"INSERT INTO {table} (partner_id, request_id, created) VALUES (%s, %s, %s) "  # noqa: S608
            "ON CONFLICT (partner_id, request_id) DO NOTHING",
            [
                partner.pk,
                SignedRequestId._meta.get_field("request_id").get_db_prep_value(
                    uuid.UUID(request_id), connection
                ),
                SignedRequestId._meta.get_field("created").get_db_prep_value(
                    timezone.now(), connection
                ),
            ],
        )
        return cursor.rowcount == 1


class HMACAuthentication(BaseAuthentication):
    """`X-API-KEY`, `X-API-REQUEST` (UUIDv7), `X-API-SIGNATURE`, checked in the contract's order:
    headers present; key known and active; signature; freshness; request id never seen.

    The request id is spent only once the signature is good, so a forged request cannot
    burn a genuine one.
    """

    def authenticate(self, request):
        key = request.headers.get("X-API-KEY", "")
        request_id = request.headers.get("X-API-REQUEST", "")
        given = request.headers.get("X-API-SIGNATURE", "")
        if not (key and request_id and given):
            raise PointsAuthError(
                "ERR-MISSING-HEADERS",
                "X-API-KEY, X-API-REQUEST and X-API-SIGNATURE are required.",
                401,
            )
        identity = active_partner("hmac_key", key)
        if identity is None:
            raise PointsAuthError("ERR-AUTH-FAILED", "Authentication failed.", 401)
        try:
            secret = self.check(request, identity.partner, request_id, given)
        except exceptions.APIException as exc:
            raise KnownCredentialRefusal(exc, identity.partner) from exc
        return identity.user, replace(identity, hmac_secret=secret)

    def check(self, request, partner: Partner, request_id: str, given: str) -> str:
        """The checks after the key: the body, the signature, freshness, the request id never
        seen. Answers the decrypted secret (to sign the response)."""
        if request.method == "GET" or not raw_body(request).strip():
            canonical = ""
        else:  # a JSON `null` body is not an empty one: it canonicalises to "null"
            canonical = signing.canonical_json(json_body(request))
        secret = credentials.decrypt_secret(partner.hmac_secret_encrypted)
        expected = signing.sign(secret, request.method, request.path, request_id, canonical)
        if not signing.signature_matches(expected, given):
            raise PointsAuthError("ERR-INVALID-SIGNATURE", "Invalid signature.", 401)
        issued = uuid7_time(request_id)
        if issued is None:
            raise PointsAuthError("ERR-AUTH-FAILED", "X-API-REQUEST must be a UUIDv7.", 401)
        skew = settings.POINTS_API_MAX_SKEW_SECONDS
        if abs((timezone.now() - issued).total_seconds()) > skew:
            raise PointsAuthError("ERR-REQUEST-EXPIRED", "The request has expired.", 401)
        if not remember_request_id(partner, request_id):
            raise PointsAuthError(
                "ERR-DUPLICATE-REQUEST", "This X-API-REQUEST was already used.", 409
            )
        return secret

    def authenticate_header(self, request) -> str:
        return "HMAC"
