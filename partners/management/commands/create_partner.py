from django.core.management.base import CommandError

from accounts.models import Merchant
from loyalty.audit import Channel
from loyalty.commands import JsonCommand
from partners.services import partner_create


class Command(JsonCommand):
    help = "Create a partner with its credentials (shown only now)."

    def add_command_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--merchant",
            type=int,
            action="append",
            required=True,
            help="Repeatable; the first is the primary merchant (the Points API acts on it).",
        )
        parser.add_argument("--hmac-secret", default=None)
        parser.add_argument("--chain", default="abstract")
        parser.add_argument("--errors-as-200", action="store_true")

    def run(self, *, name, merchant, hmac_secret, chain, errors_as_200, **options):
        ids = list(dict.fromkeys(merchant))
        found = Merchant.objects.in_bulk(ids)
        missing = [m for m in ids if m not in found]
        if missing:
            raise CommandError(f"merchant {missing[0]} does not exist")
        partner, credentials = partner_create(
            actor=None,
            channel=Channel.COMMAND,
            name=name,
            merchants=[found[m] for m in ids],
            hmac_secret=hmac_secret,
            chain=chain,
            errors_as_200=errors_as_200,
        )
        payload = {
            "id": partner.pk,
            "name": partner.name,
            "api_key": credentials.api_key,
            "hmac_key": credentials.hmac_key,
            "hmac_secret": credentials.hmac_secret,
        }
        text = "\n".join(
            [
                f"Created partner {partner.pk}: {partner.name} (merchants {ids})",
                f"  api_key (Stamp API 'APIKey', Balance API 'Token'): {credentials.api_key}",
                f"  hmac_key (Points API X-API-KEY): {credentials.hmac_key}",
                f"  hmac_secret (Points API shared secret): {credentials.hmac_secret}",
                "These secrets are not shown again.",
            ]
        )
        return payload, text
