"""Admin forms write only through services, attributed to the staff user on `admin`."""

import pytest

from accounts.models import Customer, Merchant, Store
from ledger import history
from ledger.models import StampCard
from partners import credentials as creds
from partners.models import Partner
from tests import factories

pytestmark = pytest.mark.django_db


def customer_data(merchant, **overrides):
    return {
        "merchant": merchant.pk,
        "email": "New.Person@Example.com",
        "member_id": "M-NEW",
        "wallet_address": "",
        "name": "New Person",
        "status": "Blue",
        **overrides,
    }


def test_support_creates_a_customer_through_the_service(support_client, merchant):
    response = support_client.post("/admin/accounts/customer/add/", customer_data(merchant))

    assert response.status_code == 302
    customer = Customer.objects.get(member_id="M-NEW")
    assert customer.email == "new.person@example.com"  # normalised by the service
    version = history.object_history(Customer, customer.pk)[0]
    assert (version.actor, version.channel, version.operation, version.history_type) == (
        "support-1",
        "admin",
        "customer_create",
        "+",
    )


def test_a_duplicate_email_is_a_form_error_and_creates_nothing(support_client, customer):
    data = customer_data(customer.merchant, email=customer.email.upper(), member_id="M-OTHER")

    response = support_client.post("/admin/accounts/customer/add/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Customer.objects.filter(member_id="M-OTHER").exists()


def test_a_customer_without_any_identifier_is_refused_by_the_service(support_client, merchant):
    data = customer_data(merchant, email="", member_id="")
    response = support_client.post("/admin/accounts/customer/add/", data)
    assert response.status_code == 200
    assert "a customer needs an email" in str(response.context["adminform"].form.errors)


def test_support_edits_a_customer_but_never_its_balance_points_or_merchant(
    support_client, customer
):
    other = factories.MerchantFactory()
    data = customer_data(customer.merchant, name="Renamed", member_id=customer.member_id)
    data.update(
        email=customer.email,
        wallet_address=customer.wallet_address,
        merchant=other.pk,
        balance="999",
        points="999",
    )

    response = support_client.post(f"/admin/accounts/customer/{customer.pk}/change/", data)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.balance, customer.points) == ("Renamed", 0, 0)
    assert customer.merchant_id != other.pk
    version = history.object_history(Customer, customer.pk)[0]
    assert (version.actor, version.channel, version.operation) == (
        "support-1",
        "admin",
        "customer_update",
    )
    assert [c.field for c in version.changes] == ["name"]


def test_auditor_cannot_change_or_add_a_customer(auditor_client, customer):
    data = customer_data(customer.merchant, name="Hacked", member_id=customer.member_id)
    data["email"] = customer.email
    assert (
        auditor_client.post(f"/admin/accounts/customer/{customer.pk}/change/", data).status_code
        == 403
    )
    assert auditor_client.post("/admin/accounts/customer/add/", data).status_code == 403
    customer.refresh_from_db()
    assert customer.name != "Hacked"


def test_support_adds_a_stamp_card_but_not_a_merchant(support_client, merchant):
    response = support_client.post(
        "/admin/ledger/stampcard/add/",
        {"merchant": merchant.pk, "name": "Tea card", "max_stamps": "8"},
    )
    assert response.status_code == 302
    card = StampCard.objects.get(name="Tea card")
    assert history.object_history(StampCard, card.pk)[0].actor == "support-1"
    assert support_client.post("/admin/accounts/merchant/add/", {"name": "X"}).status_code == 403


def test_superuser_adds_a_merchant_and_a_store_through_the_services(superuser_client):
    assert (
        superuser_client.post("/admin/accounts/merchant/add/", {"name": "Tea House"}).status_code
        == 302
    )
    merchant = Merchant.objects.get(name="Tea House")
    response = superuser_client.post(
        "/admin/accounts/store/add/", {"merchant": merchant.pk, "name": "Tea House Station"}
    )
    assert response.status_code == 302
    store = Store.objects.get(name="Tea House Station")
    for model, pk in ((Merchant, merchant.pk), (Store, store.pk)):
        version = history.object_history(model, pk)[0]
        assert (version.actor, version.channel) == ("root-1", "admin")
    refused = superuser_client.post(
        "/admin/ledger/stampcard/add/",
        {"merchant": merchant.pk, "name": "Big", "max_stamps": "20000"},
    )
    assert refused.status_code == 200 and not StampCard.objects.filter(name="Big").exists()


def test_ledger_rows_and_partners_cannot_be_added_or_edited_in_the_admin(superuser_client):
    for url in [
        "/admin/ledger/stamp/add/",
        "/admin/ledger/balanceupdate/add/",
        "/admin/ledger/pointtransaction/add/",
        "/admin/partners/partner/add/",
    ]:
        assert superuser_client.get(url).status_code == 403, url


# --- partners: credentials -----------------------------------------------------------------


def test_partner_page_never_shows_stored_credentials(partner, auditor_client):
    html = auditor_client.get(f"/admin/partners/partner/{partner.pk}/change/").content.decode()

    assert partner.name in html and partner.api_key_prefix in html
    for secret in (
        partner.credentials.api_key,
        partner.credentials.hmac_secret,
        partner.credentials.hmac_key,
        partner.api_key_hash,
        partner.hmac_secret_encrypted,
    ):
        assert secret not in html
    assert "Rotate credentials" not in html


def test_superuser_rotates_credentials_and_sees_the_new_secret_once(partner, superuser_client):
    url = f"/admin/partners/partner/{partner.pk}/rotate-credentials/"
    assert (
        url
        in superuser_client.get(f"/admin/partners/partner/{partner.pk}/change/").content.decode()
    )
    assert superuser_client.post(url, {"post": "yes", "reason": ""}).status_code == 200
    partner.refresh_from_db()
    assert creds.api_key_matches(partner.credentials.api_key, partner.api_key_hash)

    response = superuser_client.post(url, {"post": "yes", "reason": "Rotated after staff change"})

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = response.context["credentials"]
    assert new.api_key in response.content.decode()
    assert new.hmac_secret in response.content.decode()
    partner.refresh_from_db()
    assert creds.api_key_matches(new.api_key, partner.api_key_hash)
    assert not creds.api_key_matches(partner.credentials.api_key, partner.api_key_hash)
    assert creds.decrypt_secret(partner.hmac_secret_encrypted) == new.hmac_secret
    page = superuser_client.get(f"/admin/partners/partner/{partner.pk}/change/").content.decode()
    assert new.api_key not in page and new.hmac_secret not in page
    version = history.object_history(Partner, partner.pk)[0]
    assert (version.actor, version.channel, version.reason) == (
        "root-1",
        "admin",
        "Rotated after staff change",
    )


def test_support_and_auditor_cannot_rotate_credentials(partner, support_client, auditor_client):
    url = f"/admin/partners/partner/{partner.pk}/rotate-credentials/"
    before = partner.api_key_hash
    for client in (support_client, auditor_client):
        assert client.post(url, {"post": "yes", "reason": "not allowed"}).status_code == 403
    partner.refresh_from_db()
    assert partner.api_key_hash == before


def test_the_customer_form_refuses_an_email_that_is_not_one(support_client, merchant):
    """A customer with email `M-1002` once took credits meant for member `M-1002`."""
    data = customer_data(merchant, email="M-1002", member_id="M-OTHER")
    response = support_client.post("/admin/accounts/customer/add/", data)
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert not Customer.objects.filter(member_id="M-OTHER").exists()
