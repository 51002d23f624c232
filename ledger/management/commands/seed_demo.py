"""Demo data for `make run`: idempotent; with DEBUG on its logins are public (demo only),
with DEBUG off their passwords are random and printed once."""

import datetime as dt
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Merchant, Store
from accounts.services import customer_create, merchant_create, store_create
from ledger import services
from ledger.models import Stamp, StampCard
from ledger.roles import staff_create
from loyalty.audit import Channel
from loyalty.commands import JsonCommand
from partners.credentials import Credentials
from partners.models import Partner
from partners.services import partner_create

MERCHANT = "Demo Coffee"
STORES = ["Demo Coffee Downtown", "Demo Coffee Airport"]
CARD = "Coffee card"
PARTNER = "Demo partner"
# Fixed, public demo secrets so that a second run can print what the first made.
DEMO_CREDENTIALS = Credentials(
    api_key="demo-partner-api-key",
    hmac_key="demo-hmac-key",
    hmac_secret="demo-hmac-secret",  # noqa: S106 - public demo secret, documented as such
)
USERS = [
    ("admin", "admin", "admin"),
    ("support", "support", "support"),
    ("auditor", "auditor", "auditor"),
    ("supervisor", "supervisor", "supervisor"),
]
CUSTOMERS = [
    # email, member id, wallet, name, balance, points, stamps
    (
        "alice@example.com",
        "M-1001",
        "0xa11ce00000000000000000000000000000000001",
        "Alice",
        1500,
        5000,
        3,
    ),
    (
        "bob@example.com",
        "M-1002",
        "0xb0b0000000000000000000000000000000000002",
        "Bob",
        200,
        1200,
        7,
    ),
    ("carol@example.com", "M-1003", "0xca20100000000000000000000000000000000003", "Carol", 0, 0, 0),
]


class Command(JsonCommand):
    help = "Create demo data (merchant, stores, card, customers, partner, one user per role)."

    @transaction.atomic
    def run(self, **options):
        actor, channel = None, Channel.COMMAND
        merchant = Merchant.objects.filter(name=MERCHANT).order_by("id").first() or (
            merchant_create(actor=actor, channel=channel, name=MERCHANT)
        )
        stores = [
            Store.objects.filter(merchant=merchant, name=name).first()
            or store_create(actor=actor, channel=channel, merchant=merchant, name=name)
            for name in STORES
        ]
        card = StampCard.objects.filter(merchant=merchant, name=CARD).first() or (
            services.stamp_card_create(
                actor=actor, channel=channel, merchant=merchant, name=CARD, max_stamps=10
            )
        )
        customers = []
        today = timezone.localdate()
        for email, member_id, wallet, name, balance, points, stamps in CUSTOMERS:
            customer = Customer.objects.filter(merchant=merchant, email=email).first()
            if customer is None:
                customer = customer_create(
                    actor=actor,
                    channel=channel,
                    merchant=merchant,
                    email=email,
                    member_id=member_id,
                    wallet_address=wallet,
                    name=name,
                )
                if balance:
                    services.balance_credit(
                        actor=actor,
                        channel=channel,
                        customer=customer,
                        store=stores[0],
                        amount=balance,
                    )
                if points:
                    services.points_credit(
                        actor=actor,
                        channel=channel,
                        customer=customer,
                        points=points,
                        reason="Demo opening points",
                    )
                stamp = services.stamp_create(
                    actor=actor,
                    channel=channel,
                    card=card,
                    customer=customer,
                    start_date=today - dt.timedelta(days=30),
                    end_date=today + dt.timedelta(days=335),
                )
                for _ in range(stamps):
                    services.stamp_add(actor=actor, channel=channel, stamp=stamp)
                customer.refresh_from_db()
            customers.append(customer)
        partner = Partner.objects.filter(name=PARTNER).first()
        if partner is None:
            partner, _ = partner_create(
                actor=actor,
                channel=channel,
                name=PARTNER,
                merchants=[merchant],
                credentials=DEMO_CREDENTIALS,
            )
        users = {}
        for username, role, demo_password in USERS:
            exists = get_user_model().objects.filter(username=username).exists()
            # With DEBUG on (`make run`) the public demo passwords; otherwise a random one,
            # set when the user is created and printed only then (None on later runs).
            if settings.DEBUG:
                password = demo_password
            else:
                password = None if exists else secrets.token_urlsafe(12)
            _user, token = staff_create(
                username=username,
                role=role,
                password=None if exists else password,
                check_password=not settings.DEBUG,
            )
            users[role] = {"username": username, "password": password, "token": token}
        stamps = {
            s.customer_id: s.pk for s in Stamp.objects.filter(card=card, customer__in=customers)
        }
        payload = {
            "merchant": {"id": merchant.pk, "name": merchant.name},
            "stores": [{"id": s.pk, "name": s.name} for s in stores],
            "stamp_card": {"id": card.pk, "name": card.name, "max_stamps": card.max_stamps},
            "customers": [
                {
                    "id": c.pk,
                    "email": c.email,
                    "member_id": c.member_id,
                    "wallet_address": c.wallet_address,
                    "balance": c.balance,
                    "points": c.points,
                    "stamp": stamps.get(c.pk),
                }
                for c in customers
            ],
            "partner": {
                "id": partner.pk,
                "name": partner.name,
                "api_key": DEMO_CREDENTIALS.api_key,
                "hmac_key": DEMO_CREDENTIALS.hmac_key,
                "hmac_secret": DEMO_CREDENTIALS.hmac_secret,
            },
            "users": users,
        }
        lines = [
            f"Merchant {merchant.pk}: {merchant.name}",
            "Stores: " + ", ".join(f"{s.pk} ({s.name})" for s in stores),
            f"Stamp card {card.pk}: {card.name} (max {card.max_stamps})",
            *[
                f"Customer {c['id']}: {c['email']} member {c['member_id']} wallet "
                f"{c['wallet_address']} balance {c['balance']} points {c['points']} "
                f"stamp {c['stamp']}"
                for c in payload["customers"]
            ],
            f"Partner {partner.pk}: {partner.name}",
            f"  api_key {DEMO_CREDENTIALS.api_key}   (Stamp API: 'Authorization: APIKey ...', "
            "Balance API: 'Authorization: Token ...')",
            f"  hmac_key {DEMO_CREDENTIALS.hmac_key}   hmac_secret {DEMO_CREDENTIALS.hmac_secret}"
            "   (Points API)",
            *[
                f"User {u['username']} / {u['password'] or '(unchanged)'} ({role}), "
                f"API token {u['token']}"
                for role, u in users.items()
            ],
            "Passwords and tokens are shown once (tokens: a new one each run)."
            if not settings.DEBUG
            else "These are public demo credentials: never run seed_demo on a real deployment.",
        ]
        return payload, "\n".join(lines)
