"""Partners: outside systems that move value for their merchants, and their credentials."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Merchant, audit_history


class Partner(models.Model):
    """A partner credential set. Secrets are shown once, at creation or rotation.

    `api_key_hash` is the SHA-256 of the API key (high-entropy random, so a fast hash is
    enough and lookups stay indexed); `hmac_secret_encrypted` is the Points API's shared
    secret, Fernet-encrypted at rest because the server needs it to sign responses.
    """

    name = models.CharField(max_length=100, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="partner"
    )
    primary_merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    merchants = models.ManyToManyField(Merchant, related_name="partners")
    api_key_prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    api_key_hash = models.CharField(max_length=64, unique=True)
    hmac_key = models.CharField(max_length=64, unique=True, help_text="The X-API-KEY value.")
    hmac_secret_encrypted = models.TextField()
    chain = models.CharField(max_length=40, default="abstract")
    errors_as_200 = models.BooleanField(
        default=False, help_text="Points API answers errors with HTTP 200 (same body)."
    )
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    # Secrets never reach history; identifiers of credentials do (a rotation shows), but every
    # reader of history (ledger.history) masks their values: the admin's object history, audit
    # log and CSV, and the staff API's history and audit log alike.
    history = audit_history(
        version_index=True, excluded_fields=["api_key_hash", "hmac_secret_encrypted"]
    )
    history_redacted_fields = (
        "api_key_prefix",
        "api_key_hash",
        "hmac_key",
        "hmac_secret_encrypted",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="partner_name_not_empty"),
        ]

    str_fields = ("name",)  # what __str__ reads (see accounts.models.Merchant.str_fields)

    def __str__(self) -> str:
        return self.name


class SignedRequestId(models.Model):
    """An X-API-REQUEST already used with a credential (Points API replay protection).

    Kept in PostgreSQL rather than a cache: a cache that evicts, culls or restarts empty
    cannot prove that a request id was never seen. Rows older than twice the allowed clock
    skew can no longer matter and are purged (`manage.py purge_expired`).
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    request_id = models.UUIDField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "request_id"], name="signedrequestid_once_per_partner"
            )
        ]

    def __str__(self) -> str:
        return str(self.request_id)
