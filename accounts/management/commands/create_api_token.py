from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_create
from common.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is stored hashed and cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument("--days", type=int, help="Lifetime in days (default: API_TOKEN_TTL_DAYS).")
        lifetime.add_argument("--no-expiry", action="store_true", help="A token that never expires.")

    def handle(self, *args, email, days, no_expiry, **options):
        try:
            user = User.objects.get_by_natural_key(email)
        except User.DoesNotExist as exc:
            raise CommandError(f"No user with email {email!r}.") from exc
        kwargs = {}
        if no_expiry:
            kwargs["ttl"] = None
        elif days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1.")
            kwargs["ttl"] = timedelta(days=days)
        try:
            token, raw = api_token_create(user=user, **kwargs)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        expiry = token.expiry.isoformat() if token.expiry else "never"
        self.stderr.write(f"Token for {user.email} (expires: {expiry}). Send it as 'Authorization: Token <token>'.")
        self.stdout.write(raw)
