from accounts import tokens
from ledger import roles
from ledger.roles import staff_create
from loyalty.commands import JsonCommand


class Command(JsonCommand):
    help = "Create (or update) a staff user with a role and print a new API token (once)."

    def add_command_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(roles.ROLES))
        parser.add_argument("--password", default=None)

    def run(self, *, username, role, password, **options):
        user, token = staff_create(username=username, role=role, password=password)
        expires = tokens.expiry(token).isoformat()
        payload = {"username": user.username, "role": role, "token": token}
        payload["token_expires"] = expires
        return payload, (
            f"Staff user {user.username} ({role}); API token: {token} "
            f"(expires {expires}; shown once: `issue_token {user.username}` makes another)"
        )
