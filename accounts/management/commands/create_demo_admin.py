import secrets

from django.core.management.base import BaseCommand

from accounts.models import User
from accounts.services import user_create, user_email_confirm


class Command(BaseCommand):
    help = "Create the demo superuser with a random password, printed once (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument("--site", default="http://127.0.0.1:8000", help="Where the site runs (for the message).")

    def handle(self, *args, email, site, **options):
        if User.objects.filter(email__iexact=email).exists():
            self.stdout.write(
                f"Demo admin {email} already exists (its password was printed when it was made; "
                f"`python manage.py changepassword {email}` sets a new one)."
            )
            return
        password = secrets.token_urlsafe(12)
        user = user_create(email=email, password=password, is_staff=True, is_superuser=True)
        # Its address is made up: confirmed here, so that the site's log-in page lets it in as the admin's does.
        user_email_confirm(user=user)
        bar = "=" * 72
        self.stdout.write(
            self.style.SUCCESS(
                f"{bar}\nDemo admin created. Log in at {site.rstrip('/')}/accounts/login/ (or /admin/) with\n"
                f"  email:    {email}\n  password: {password}\n"
                f"This password is shown only now.\n{bar}"
            )
        )
