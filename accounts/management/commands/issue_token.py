"""Issue a staff API token (printed once), or revoke every token of a staff user."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from accounts import tokens
from loyalty.commands import JsonCommand


class Command(JsonCommand):
    help = "Print a new staff API token for USERNAME (shown once), or --revoke all of them."

    def add_command_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true", help="Revoke every token.")

    def run(self, *, username, revoke, **options):
        user = get_user_model().objects.filter(username=username, is_staff=True).first()
        if user is None:
            raise CommandError(f"no staff user {username!r}")
        if revoke:
            count = tokens.revoke(user)
            return {"username": username, "revoked": count}, f"Revoked {count} token(s)."
        key, row = tokens.issue(user)
        expires = row.expiry.isoformat()
        payload = {"username": username, "token": key, "token_expires": expires}
        return payload, f"API token for {username}: {key} (expires {expires}; shown once)"
