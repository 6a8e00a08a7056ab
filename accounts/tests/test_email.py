"""The development mail backend (accounts/email.py): a sign-up's confirmation mail framed on the console with its
link, and saved under var/mail/."""

import email
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

STRONG = "correct horse battery staple 42"


def test_signup_confirmation_is_framed_with_its_link_and_saved_as_a_file(settings, tmp_path, capsys, role_groups):
    settings.EMAIL_BACKEND = "accounts.email.DevelopmentEmailBackend"
    settings.VAR_DIR = tmp_path
    response = Client().post(
        reverse("account_signup"), {"email": "new@example.com", "password1": STRONG, "password2": STRONG}
    )
    assert response.status_code == 302

    out = capsys.readouterr().out
    block = out[out.index("=" * 78) :].splitlines()
    assert block[1] == "MAIL (development: not sent) to new@example.com"
    assert block[2].startswith("Subject: [Sensorhub] ")
    links = [line.removeprefix("Link: ") for line in block if line.startswith("Link: ")]
    assert len(links) == 1
    assert "/accounts/confirm-email/" in links[0]
    saved = [line.removeprefix("Saved as ") for line in block if line.startswith("Saved as ")]
    files = list((tmp_path / "mail").glob("*.eml"))
    assert [str(path) for path in files] == saved
    parsed = email.message_from_bytes(files[0].read_bytes())
    assert parsed["To"] == "new@example.com"
    text = parsed.get_payload(0) if parsed.is_multipart() else parsed
    assert links[0] in text.get_payload(decode=True).decode()

    # The link works: the confirmation page it names answers.
    assert Client().get(urlsplit(links[0]).path).status_code == 200


def test_make_run_uses_it_while_email_url_is_the_console(tmp_path):
    import subprocess
    import sys

    from django.conf import settings as django_settings

    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.EMAIL_BACKEND)"],
        cwd=django_settings.BASE_DIR,
        env={"DJANGO_SETTINGS_MODULE": "config.settings.dev", "SENSORHUB_VAR_DIR": str(tmp_path)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "accounts.email.DevelopmentEmailBackend"
