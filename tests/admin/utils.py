"""Helpers for the admin tests: drive actions through the changelist URL, read messages."""

from django.contrib.messages import get_messages
from django.utils.html import strip_tags

from ledger import services
from loyalty.audit import Channel


def changelist(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def post_action(client, model, action: str, objects, *, follow: bool = False, **data):
    """POST to the changelist as the action dropdown (and then the confirmation page) does."""
    payload = {"action": action, "_selected_action": [str(o.pk) for o in objects], **data}
    return client.post(changelist(model), payload, follow=follow)


def preview_token_of(response) -> str:
    """The signed preview a confirmation page carries ("" where the page shows none)."""
    context = getattr(response, "context", None)
    if response.status_code != 200 or context is None or "preview_token" not in context:
        return ""
    return context["preview_token"] or ""


def confirm_action(client, model, action: str, objects, reason: str, **data):
    """Preview as the page does (with the amount, if any), then confirm what was previewed."""
    preview = {"preview": "1"} if "amount" in data else {}
    page = post_action(client, model, action, objects, **preview, **data)
    token = preview_token_of(page)
    return post_action(
        client, model, action, objects, post="yes", reason=reason, preview_token=token, **data
    )


def confirm_object(client, url: str, reason: str, **data):
    """The object page's button: open its confirmation (previewing an amount), then confirm."""
    page = client.post(url, {"preview": "1", **data}) if "amount" in data else client.get(url)
    token = preview_token_of(page)
    return client.post(url, {"post": "yes", "reason": reason, "preview_token": token, **data})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def texts_of(response) -> list[str]:
    """The messages as read, without their markup (links, lists)."""
    return [strip_tags(m) for m in messages_of(response)]


def deduct(partner, customer, points: int, redemption_id: str):
    return services.point_deduct(
        actor=partner.user,
        channel=Channel.POINTS_API,
        partner=partner,
        customer=customer,
        points=points,
        redemption_id=redemption_id,
    )


def credit(customer, amount: int, store=None):
    return services.balance_credit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=amount
    )


def debit(customer, amount: int, store=None):
    return services.balance_debit(
        actor=None, channel=Channel.COMMAND, customer=customer, store=store, amount=amount
    )
