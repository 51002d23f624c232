from django.core.management.base import CommandError

from accounts.models import Merchant, Store
from accounts.services import store_create
from loyalty.audit import Channel
from loyalty.commands import JsonCommand


class Command(JsonCommand):
    help = "Create a store of a merchant."

    def add_command_arguments(self, parser):
        parser.add_argument("--merchant", type=int, required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--id", type=int, default=None)

    def run(self, *, merchant, name, id, **options):
        owner = Merchant.objects.filter(pk=merchant).first()
        if owner is None:
            raise CommandError(f"merchant {merchant} does not exist")
        if id is not None and Store.objects.filter(pk=id).exists():
            raise CommandError(f"store {id} exists")
        store = store_create(actor=None, channel=Channel.COMMAND, merchant=owner, name=name, id=id)
        payload = {"id": store.pk, "merchant": owner.pk, "name": store.name}
        return payload, f"Created store {store.pk}: {store.name} (merchant {owner.pk})"
