"""Helpers for the admin tests: drive actions through the changelist URL, read messages."""

from django.contrib.messages import get_messages

from ledger import services
from loyalty.audit import Channel


def changelist(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def post_action(client, model, action: str, objects, *, follow: bool = False, **data):
    """POST to the changelist as the action dropdown (and then the confirmation page) does."""
    payload = {"action": action, "_selected_action": [str(o.pk) for o in objects], **data}
    return client.post(changelist(model), payload, follow=follow)


def confirm_action(client, model, action: str, objects, reason: str, **data):
    return post_action(client, model, action, objects, post="yes", reason=reason, **data)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


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
