"""Base of the provisioning commands: `--json` output and domain errors as CommandError."""

import json

from django.core.management.base import BaseCommand, CommandError

from loyalty.errors import DomainError


class JsonCommand(BaseCommand):
    """Subclasses implement `add_command_arguments` and `run(**options) -> (payload, text)`."""

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser) -> None:
        pass

    def run(self, **options) -> tuple[dict, str]:
        raise NotImplementedError

    def handle(self, *args, **options):
        try:
            payload, text = self.run(**options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(text)
