from django.core.management.base import CommandError

from accounts.models import Merchant
from accounts.services import merchant_create
from loyalty.audit import Channel
from loyalty.commands import JsonCommand


class Command(JsonCommand):
    help = "Create a merchant."

    def add_command_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--id", type=int, default=None)

    def run(self, *, name, id, **options):
        if id is not None and Merchant.objects.filter(pk=id).exists():
            raise CommandError(f"merchant {id} exists")
        merchant = merchant_create(actor=None, channel=Channel.COMMAND, name=name, id=id)
        payload = {"id": merchant.pk, "name": merchant.name}
        return payload, f"Created merchant {merchant.pk}: {merchant.name}"
