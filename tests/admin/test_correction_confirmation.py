"""The confirmation page applies only what it previewed; object pages offer only what could
succeed and say what happened; applied corrections reach the admin log ("Recent actions")."""

import datetime as dt
import re

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.utils import timezone

from accounts.models import Customer
from ledger import services
from ledger.admin import corrections as admin_corrections
from ledger.admin.corrections import StalePreview, check_preview_token, preview_token
from ledger.models import BalanceUpdate, PointTransaction, Stamp
from loyalty.audit import Channel
from tests import factories
from tests.admin.utils import (
    changelist,
    confirm_action,
    confirm_object,
    credit,
    debit,
    deduct,
    post_action,
    texts_of,
)
from tests.helpers import fund

pytestmark = pytest.mark.django_db

REASON = "Customer was double-scanned at the till"


def adjust_url(customer, kind="adjust_points") -> str:
    return f"/admin/accounts/customer/{customer.pk}/correction/{kind}/"


# --- the preview token ---------------------------------------------------------------------


def test_a_token_checks_only_the_parameters_it_signed(support, auditor):
    token = preview_token("adjust_points", [3, 1], 250, support)

    check_preview_token(token, "adjust_points", [1, 3], 250, support)  # order does not matter

    refusals = {
        "tampered": (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), [1, 3], 250, support),
        "another user": (token, [1, 3], 250, auditor),
        "other objects": (token, [1, 3, 4], 250, support),
        "another amount": (token, [1, 3], -999999, support),
        "none": ("", [1, 3], 250, support),
    }
    fields = {}
    for name, (candidate, ids, amount, user) in refusals.items():
        with pytest.raises(StalePreview) as refused:
            check_preview_token(candidate, "adjust_points", ids, amount, user)
        fields[name] = refused.value.field
    # Only a changed amount is the amount's error; the rest concern the whole page.
    assert fields == {
        "tampered": None,
        "another user": None,
        "other objects": None,
        "another amount": "amount",
        "none": "amount",
    }
    with pytest.raises(StalePreview, match="does not match"):  # salted per kind
        check_preview_token(token, "adjust_balance", [1, 3], 250, support)
    with pytest.raises(StalePreview, match="expired"):
        check_preview_token(token, "adjust_points", [1, 3], 250, support, max_age=-1)


def test_yes_after_changing_the_amount_applies_nothing_and_previews_the_new_amount(
    support_client, customer
):
    fund(customer, points=100)
    url = adjust_url(customer)
    refused = support_client.post(url, {"preview": "1", "amount": "-999999"})
    assert [o.refusal for o in refused.context["outcomes"]] == [
        "User has 100 points, cannot deduct 999999."
    ]
    stale = refused.context["preview_token"]

    response = support_client.post(
        url, {"post": "yes", "amount": "250", "reason": REASON, "preview_token": stale}
    )

    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.points == 100 and not PointTransaction.objects.filter(kind="adjust").exists()
    errors = response.context["form"].errors
    assert list(errors) == ["amount"] and "changed after the preview" in errors["amount"][0]
    # The page previews the amount now in the field, and signs that one.
    assert [o.after for o in response.context["outcomes"]] == ["350 points"]
    assert "Preview of an amount of +250" in response.content.decode()
    fresh = response.context["preview_token"]
    assert fresh != stale

    applied = support_client.post(
        url, {"post": "yes", "amount": "250", "reason": REASON, "preview_token": fresh}
    )

    assert applied.status_code == 302
    customer.refresh_from_db()
    assert customer.points == 350


def test_yes_without_a_preview_or_with_another_selections_token_applies_nothing(
    support_client, merchant
):
    rich = fund(factories.CustomerFactory(merchant=merchant), balance=100)
    other = fund(factories.CustomerFactory(merchant=merchant), balance=100)
    data = {"amount": "-10", "reason": REASON}
    one = post_action(support_client, Customer, "adjust_balance", [rich], preview="1", **data)

    unpreviewed = post_action(
        support_client, Customer, "adjust_balance", [rich], post="yes", **data
    )
    widened = post_action(
        support_client,
        Customer,
        "adjust_balance",
        [rich, other],
        post="yes",
        preview_token=one.context["preview_token"],
        **data,
    )

    assert unpreviewed.status_code == widened.status_code == 200
    assert "Preview first" in unpreviewed.context["form"].errors["amount"][0]
    assert "does not match the preview" in widened.context["form"].non_field_errors()[0]
    assert set(Customer.objects.values_list("balance", flat=True)) == {100}


def test_an_expired_preview_applies_nothing(support_client, stamp, monkeypatch):
    stamp = services.stamp_add(actor=None, channel=Channel.COMMAND, stamp=stamp)
    url = f"/admin/ledger/stamp/{stamp.pk}/correction/deduct_stamp/"
    token = support_client.get(url).context["preview_token"]
    monkeypatch.setattr(admin_corrections, "PREVIEW_MAX_AGE", -1)

    response = support_client.post(url, {"post": "yes", "reason": REASON, "preview_token": token})

    assert response.status_code == 200
    assert "expired" in response.context["form"].non_field_errors()[0]
    stamp.refresh_from_db()
    assert stamp.count == 1


def test_a_preview_needs_no_reason_and_the_page_offers_yes_only_after_one(support_client, customer):
    fund(customer, balance=10)
    first = support_client.get(adjust_url(customer, "adjust_balance"))
    html = first.content.decode()
    assert 'id="confirm-correction"' not in html and "preview_token" not in html
    assert re.search(
        r'<input type="submit" name="preview"[^>]*formnovalidate[^>]*class="default"', html
    )

    preview = support_client.post(
        adjust_url(customer, "adjust_balance"), {"preview": "1", "amount": "5"}
    )

    assert preview.status_code == 200 and not preview.context["form"].errors
    half_typed = support_client.post(
        adjust_url(customer, "adjust_balance"), {"preview": "1", "amount": "5", "reason": "ab"}
    )
    assert not half_typed.context["form"].errors  # a reason is checked when applying only
    assert [o.after for o in preview.context["outcomes"]] == ["balance 15"]
    html = preview.content.decode()
    # The primary button looks primary; cancel is a plain link.
    assert re.search(
        r'<input type="submit" name="post" value="Yes, I\u2019m sure" class="default"', html
    )
    assert '<a href="#" class="cancel-link">' in html
    assert "delete-confirmation" not in html  # Django's red delete buttons are not ours


def test_every_help_text_the_fields_point_at_exists(support_client, customer):
    html = support_client.get(adjust_url(customer)).content.decode()

    described = re.findall(r'aria-describedby="([^"]+)"', html)

    assert {"id_amount_helptext", "id_reason_helptext"} <= set(described)
    for element_id in described:
        assert f'id="{element_id}"' in html


# --- the admin log ---------------------------------------------------------------------------


def test_each_applied_correction_is_in_the_admin_log_and_the_recent_actions(
    support_client, support, card, customer
):
    stamps = [factories.StampFactory(card=card, customer=customer, count=n) for n in (2, 0)]
    post_action(support_client, Stamp, "deduct_stamp", stamps)  # a preview logs nothing
    assert not LogEntry.objects.exists()

    confirm_action(support_client, Stamp, "deduct_stamp", stamps, REASON)

    (entry,) = LogEntry.objects.all()  # the refused stamp left no entry
    assert (entry.user, entry.action_flag, entry.object_id) == (support, CHANGE, str(stamps[0].pk))
    assert entry.object_repr == str(Stamp.objects.get(pk=stamps[0].pk))
    assert entry.get_change_message() == f"Removed one stamp: 2/10 → 1/10. Reason: {REASON}"
    index = support_client.get("/admin/").content.decode()
    assert entry.object_repr in index and f"/admin/ledger/stamp/{stamps[0].pk}/change/" in index


def test_an_adjustment_and_a_revert_log_on_the_object_corrected(support_client, customer, partner):
    fund(customer, points=100)
    deduction = deduct(partner, customer, 40, "redeem-log")

    confirm_object(support_client, adjust_url(customer), REASON, amount="25")
    confirm_action(support_client, PointTransaction, "revert_points", [deduction], REASON)

    adjusted, reverted = LogEntry.objects.order_by("pk")
    assert (adjusted.object_id, adjusted.get_change_message()) == (
        str(customer.pk),
        f"Adjusted the points by +25: 60 points → 85 points. Reason: {REASON}",
    )
    assert (reverted.object_id, reverted.content_type.model) == (
        str(deduction.pk),
        "pointtransaction",
    )
    assert reverted.get_change_message().startswith("Reverted: 85 points → 125 points.")


# --- result messages -----------------------------------------------------------------------


def test_one_object_is_one_sentence_that_names_and_links_it(support_client, card, customer):
    stamp = factories.StampFactory(card=card, customer=customer, count=3)
    url = f"/admin/ledger/stamp/{stamp.pk}/correction/deduct_stamp/"

    response = confirm_object(support_client, url, REASON)

    (text,) = texts_of(response)
    assert text == f"Removed one stamp from {card.name} of {customer.email}, 3/10: 3/10 → 2/10."
    page = support_client.get(response["Location"]).content.decode()
    assert f'<a href="/admin/ledger/stamp/{stamp.pk}/change/">{card.name} of' in page


# --- object pages: only what could succeed, and what happened ------------------------------


def buttons(client, obj) -> list[str]:
    html = client.get(f"{changelist(type(obj))}{obj.pk}/change/").content.decode()
    return re.findall(
        r'<a href="[^"]*/correction/[^"]*" class="backoffice-action">([^<]+)</a>', html
    )


def test_a_stamp_offers_removal_only_above_0_and_not_once_deleted(support_client, card, customer):
    some, empty, deleted = (
        factories.StampFactory(card=card, customer=customer, count=n) for n in (2, 0, 1)
    )
    Stamp.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())  # test set-up only

    assert buttons(support_client, some) == ["Remove one stamp"]
    assert buttons(support_client, empty) == []
    assert buttons(support_client, deleted) == []


def test_a_balance_update_offers_cancel_only_while_it_could_succeed(
    support_client, customer, store
):
    kept = credit(customer, 100, store)
    canceled = credit(customer, 5, store)
    services.balance_update_cancel(
        actor=None, channel=Channel.COMMAND, balance_update=canceled, reason="test set-up"
    )
    spent = credit(customer, 50, store)
    debit(customer, 140, store)  # 10 left: canceling the 50 credit would go below 0

    assert buttons(support_client, kept) == []  # canceling it would leave -90
    assert buttons(support_client, canceled) == []
    assert buttons(support_client, spent) == []
    debit_row = BalanceUpdate.objects.filter(effect="debit").get()
    assert buttons(support_client, debit_row) == ["Cancel this balance update"]


def test_a_point_transaction_offers_revert_only_on_a_deduction_not_yet_reverted(
    support_client, customer, partner
):
    fund(customer, points=100)
    credit_row = PointTransaction.objects.get(kind="credit")
    open_one = deduct(partner, customer, 10, "redeem-a")
    reverted = deduct(partner, customer, 20, "redeem-b")
    revert = services.point_deduction_revert(
        actor=partner.user, channel=Channel.POINTS_API, deduction=reverted
    )

    assert buttons(support_client, open_one) == ["Revert this deduction"]
    for obj in (credit_row, reverted, revert):
        assert buttons(support_client, obj) == []


def test_a_refused_correction_reached_from_a_list_still_explains_why(
    support_client, customer, partner
):
    fund(customer, points=100)
    d = deduct(partner, customer, 10, "redeem-a")
    services.point_deduction_revert(actor=partner.user, channel=Channel.POINTS_API, deduction=d)

    page = post_action(support_client, PointTransaction, "revert_points", [d])

    assert [o.refusal for o in page.context["outcomes"]] == [
        "This deduction has already been reverted."
    ]


def test_the_customer_page_offers_both_adjustments(support_client, customer):
    assert buttons(support_client, customer) == ["Adjust balance", "Adjust points"]


def field_text(client, obj, label: str) -> str:
    html = client.get(f"{changelist(type(obj))}{obj.pk}/change/").content.decode()
    match = re.search(rf"<label>{label}:</label>\s*<div class=\"readonly\">(.*?)</div>", html, re.S)
    assert match, f"no {label} field"
    return match.group(1)


def test_a_canceled_update_page_says_who_canceled_it_when_and_why(support_client, customer, store):
    update = credit(customer, 30, store)
    confirm_action(support_client, BalanceUpdate, "cancel_balance_update", [update], REASON)
    update.refresh_from_db()
    when = timezone.localtime(update.canceled_at, dt.UTC).strftime("%Y-%m-%d %H:%M")

    text = field_text(support_client, update, "Canceled")

    assert text == f"Canceled on {when} UTC by support-1: {REASON}"
    assert "/admin/auth/user/" not in text
    assert field_text(support_client, credit(customer, 1, store), "Canceled") == "-"


def test_a_canceled_update_through_a_partner_api_names_the_channel(support_client, customer):
    update = credit(customer, 30)
    services.balance_update_cancel(
        actor=None, channel=Channel.BALANCE_API, balance_update=update, reason=""
    )

    text = field_text(support_client, update, "Canceled")

    assert text.endswith("UTC by system via Balance API")


def test_a_reverted_deduction_and_its_revert_say_what_happened(support_client, customer, partner):
    fund(customer, points=100)
    deduction = deduct(partner, customer, 40, "redeem-page")
    confirm_action(support_client, PointTransaction, "revert_points", [deduction], REASON)
    revert = PointTransaction.objects.get(reverts=deduction)
    when = timezone.localtime(revert.created, dt.UTC).strftime("%Y-%m-%d %H:%M")

    on_deduction = field_text(support_client, deduction, "Revert")
    on_revert = field_text(support_client, revert, "Revert")

    revert_url = f"/admin/ledger/pointtransaction/{revert.pk}/change/"
    assert on_deduction == (
        f'Reverted by <a href="{revert_url}">#{revert.pk}</a> on {when} UTC by support-1: {REASON}'
    )
    deduction_url = f"/admin/ledger/pointtransaction/{deduction.pk}/change/"
    assert (
        on_revert
        == f'Reverts <a href="{deduction_url}">#{deduction.pk}</a>, a deduction of 40 points'
    )
