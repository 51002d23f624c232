"""The provisioning commands of the README's wire reference, through call_command."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts import tokens
from accounts.models import Customer, Merchant, Store
from ledger import reconcile
from ledger.models import Stamp, StampCard
from partners import credentials
from partners.models import Partner

pytestmark = pytest.mark.django_db


def run_json(*args):
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_merchant_with_and_without_id():
    assert run_json("create_merchant", "--name", "Acme", "--id", "14") == {"id": 14, "name": "Acme"}
    second = run_json("create_merchant", "--name", "Beta")
    assert second["id"] != 14 and second["name"] == "Beta"
    row = Merchant.history.get(id=14)
    assert (row.channel, row.operation) == ("command", "merchant_create")


def test_create_merchant_refuses_a_taken_id():
    run_json("create_merchant", "--name", "Acme", "--id", "3")
    with pytest.raises(CommandError, match="exists"):
        run_json("create_merchant", "--name", "Again", "--id", "3")


def test_create_store_and_stamp_card():
    merchant = run_json("create_merchant", "--name", "Acme")["id"]
    store = run_json("create_store", "--merchant", str(merchant), "--name", "Main", "--id", "3")
    assert store == {"id": 3, "merchant": merchant, "name": "Main"}
    card = run_json(
        "create_stamp_card", "--merchant", str(merchant), "--name", "Coffee", "--max-stamps", "8"
    )
    assert card == {
        "id": card["id"],
        "merchant": merchant,
        "name": "Coffee",
        "max_stamps": 8,
    }
    assert StampCard.objects.get(pk=card["id"]).max_stamps == 8
    assert Store.objects.create  # the explicit id moved the sequence past it:
    assert run_json("create_store", "--merchant", str(merchant), "--name", "Next")["id"] > 3


def test_unknown_merchant_is_a_command_error():
    with pytest.raises(CommandError, match="does not exist"):
        run_json("create_store", "--merchant", "999", "--name", "Nowhere")
    with pytest.raises(CommandError):
        run_json("create_stamp_card", "--merchant", "999", "--name", "X", "--max-stamps", "5")


def test_invalid_max_stamps_is_a_command_error():
    merchant = run_json("create_merchant", "--name", "Acme")["id"]
    with pytest.raises(CommandError, match="max_stamps"):
        run_json(
            "create_stamp_card", "--merchant", str(merchant), "--name", "X", "--max-stamps", "0"
        )


def test_create_partner_shows_secrets_once_and_stores_them_protected():
    first = run_json("create_merchant", "--name", "Acme")["id"]
    second = run_json("create_merchant", "--name", "Beta")["id"]
    out = run_json(
        "create_partner",
        "--name",
        "YGG",
        "--merchant",
        str(first),
        "--merchant",
        str(second),
        "--hmac-secret",
        "s3cret-value",
        "--chain",
        "base",
        "--errors-as-200",
    )
    assert set(out) == {"id", "name", "api_key", "hmac_key", "hmac_secret"}
    assert out["hmac_secret"] == "s3cret-value"
    partner = Partner.objects.get(pk=out["id"])
    assert (partner.primary_merchant_id, partner.chain, partner.errors_as_200) == (
        first,
        "base",
        True,
    )
    assert set(partner.merchants.values_list("id", flat=True)) == {first, second}
    assert partner.api_key_hash == credentials.hash_api_key(out["api_key"])
    assert out["api_key"] not in partner.api_key_hash
    assert "s3cret-value" not in partner.hmac_secret_encrypted
    assert credentials.decrypt_secret(partner.hmac_secret_encrypted) == "s3cret-value"
    history_fields = {f.name for f in Partner.history.model._meta.fields}
    assert not history_fields & {"api_key_hash", "hmac_secret_encrypted"}
    assert partner.user.has_usable_password() is False


def test_create_staff_roles_and_tokens():
    support = run_json("create_staff", "sam", "--role", "support", "--password", "pw-123456!")
    assert support["username"] == "sam" and support["role"] == "support"
    user = get_user_model().objects.get(username="sam")
    assert tokens.expiry(support["token"]) is not None  # a stored, working token
    assert user.check_password("pw-123456!")
    assert user.has_perm("ledger.remove_stamp") and user.has_perm("accounts.change_customer")
    auditor = run_json("create_staff", "ann", "--role", "auditor")
    ann = get_user_model().objects.get(username="ann")
    assert ann.has_perm("ledger.view_historicalbalanceupdate")
    assert not ann.has_perm("ledger.cancel_balanceupdate")
    assert not ann.has_perm("accounts.change_customer")
    assert auditor["token"]
    supervisor = run_json("create_staff", "sue", "--role", "supervisor")
    sue = get_user_model().objects.get(username="sue")
    assert supervisor["role"] == "supervisor"
    assert sue.has_perm("ledger.approve_correction") and sue.has_perm("ledger.remove_stamp")
    assert not ann.has_perm("ledger.approve_correction")
    admin = run_json("create_staff", "root", "--role", "admin")
    assert get_user_model().objects.get(username="root").is_superuser
    assert admin["role"] == "admin"


def test_seed_demo_twice_reuses_what_the_first_made():
    first = run_json("seed_demo")
    second = run_json("seed_demo")
    # Tokens are shown once (each run issues new ones), passwords when they are set.
    users = first.pop("users"), second.pop("users")
    assert first == second
    assert set(users[1]) == {"admin", "support", "auditor", "supervisor"}  # one of each role
    assert [u["password"] for u in users[1].values()] == [None, None, None, None]
    assert users[0]["admin"]["token"] != users[1]["admin"]["token"]
    first["users"] = users[0]
    assert set(first) == {"merchant", "stores", "stamp_card", "customers", "partner", "users"}
    assert Merchant.objects.count() == 1 and Customer.objects.count() == 3
    assert Stamp.objects.count() == 3 and Partner.objects.count() == 1
    assert reconcile.run()[0] == []
    api_key = first["partner"]["api_key"]
    assert Partner.objects.get().api_key_hash == credentials.hash_api_key(api_key)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(first["users"]["admin"]["password"])


@pytest.mark.parametrize("password", ["a", "password", "12345", "sam"])
def test_create_staff_refuses_a_password_the_validators_refuse(password):
    with pytest.raises(CommandError, match="password") as refused:
        run_json("create_staff", "sam", "--role", "support", "--password", password)
    assert "too short" in str(refused.value) or "too common" in str(refused.value)
    assert not get_user_model().objects.filter(username="sam").exists()


def test_create_staff_refuses_a_weak_password_for_an_existing_user_and_keeps_the_old():
    run_json("create_staff", "sam", "--role", "support", "--password", "pw-123456!")
    with pytest.raises(CommandError, match="password"):
        run_json("create_staff", "sam", "--role", "admin", "--password", "12345")
    sam = get_user_model().objects.get(username="sam")
    assert sam.check_password("pw-123456!") and not sam.is_superuser


def test_seed_demo_without_debug_makes_random_passwords_printed_once(settings):
    settings.DEBUG = False
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    for username in ("admin", "support", "auditor"):
        user = get_user_model().objects.get(username=username)
        assert not user.check_password(username)
        password = text.split(f"User {username} / ")[1].split(" ")[0]
        assert len(password) >= 12 and user.check_password(password)
    assert "public demo credentials" not in text
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert "User admin / (unchanged)" in again.getvalue()


def test_seed_demo_with_debug_keeps_the_public_demo_logins(settings):
    settings.DEBUG = True
    demo = run_json("seed_demo")
    for username in ("admin", "support", "auditor"):
        assert get_user_model().objects.get(username=username).check_password(username)
    assert demo["users"]["admin"]["password"] == "admin"
