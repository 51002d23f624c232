from django.core.management.base import CommandError

from accounts.models import Merchant
from ledger.services import stamp_card_create
from loyalty.audit import Channel
from loyalty.commands import JsonCommand


class Command(JsonCommand):
    help = "Create a stamp card of a merchant."

    def add_command_arguments(self, parser):
        parser.add_argument("--merchant", type=int, required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--max-stamps", type=int, required=True)

    def run(self, *, merchant, name, max_stamps, **options):
        owner = Merchant.objects.filter(pk=merchant).first()
        if owner is None:
            raise CommandError(f"merchant {merchant} does not exist")
        card = stamp_card_create(
            actor=None, channel=Channel.COMMAND, merchant=owner, name=name, max_stamps=max_stamps
        )
        payload = {
            "id": card.pk,
            "merchant": owner.pk,
            "name": card.name,
            "max_stamps": card.max_stamps,
        }
        return payload, f"Created stamp card {card.pk}: {card.name} (max {card.max_stamps})"
