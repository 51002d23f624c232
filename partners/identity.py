"""Who a partner request is from, as its authentication found it (DRF's `request.auth`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from partners.models import Partner


@dataclass(frozen=True)
class PartnerIdentity:
    """The partner, the merchants it may act on (read with the credential, in the same
    statement) and, on the Points API, the shared secret that signs the response (decrypted
    once; never stored or logged, hence out of the repr) with the request id it signed."""

    partner: Partner
    merchant_ids: frozenset[int]
    hmac_secret: str = field(default="", repr=False)
    # The Points API's verified X-API-REQUEST, which the view spends (partners.api.points).
    request_id: str = ""

    @property
    def user(self):
        return self.partner.user
