"""The back-office admin, one surface: the site's pages and the ModelAdmins of every app.

Django's autodiscovery imports `<app>.admin`; this package is the only one, and importing it
registers the admins of accounts', partners' and ledger's models.
"""

from ledger.admin import (  # noqa: F401  (registers the admins)
    accounts,
    approvals,
    batches,
    ledger,
    partners,
    tokens,
    webhooks,
)
