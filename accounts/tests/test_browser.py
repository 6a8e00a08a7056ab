"""End to end in a real browser: sign up, confirm the email address, log in (Playwright driving Debian's Chromium).

The live server runs in a thread of this process, so the locmem backend's `django.core.mail.outbox` holds the
mails it sends. Playwright is never asked to download a browser: it launches /usr/bin/chromium.
"""

import re
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from accounts.roles import user_role
from accounts.tests.factories import UserFactory

# The live server needs committed data, hence a transactional database. Its flush after each test would also wipe
# the rows data migrations made (the role groups and their permissions); serialized_rollback restores them.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ARTIFACTS_DIR = Path(settings.BASE_DIR) / "test-artifacts"
STRONG_PASSWORD = "Quartz-lantern-84-meadow!"
TIMEOUT_MS = 10_000
CONFIRM_LINK = re.compile(r"https?://\S+/accounts/confirm-email/[^/\s]+/")


@pytest.fixture
def page(browser: Browser, live_server) -> Page:
    """A fresh browser context (no cookies) and page per test, with relative URLs going to the live server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def _log_in(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("main form").get_by_role("button", name="Sign In").click()


def test_sign_up_confirm_email_and_log_in(page: Page, live_server, mailoutbox):
    email = "new.viewer@example.com"

    page.goto("/")
    page.locator("header").get_by_role("link", name="Sign up").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/signup/")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password1]").fill(STRONG_PASSWORD)
    page.locator("input[name=password2]").fill(STRONG_PASSWORD)
    page.locator("main form").get_by_role("button", name="Sign Up").click()

    # Mandatory verification: no log-in yet, a confirmation mail instead.
    expect(page).to_have_url(f"{live_server.url}/accounts/confirm-email/")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert mailoutbox, "sign-up sent no email"
    message = mailoutbox[-1]
    assert message.to == [email]
    match = CONFIRM_LINK.search(message.body)
    assert match, f"no confirmation link in the email body:\n{message.body}"
    confirm_url = match.group(0)
    assert confirm_url.startswith(live_server.url), confirm_url

    # allauth confirms with a POST (ACCOUNT_CONFIRM_EMAIL_ON_GET = False): opening the link alone changes nothing.
    page.goto(confirm_url)
    assert not EmailAddress.objects.filter(email=email, verified=True).exists()
    page.locator("main form").get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(re.escape(f"{live_server.url}/accounts/login/")))

    _log_in(page, email, STRONG_PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_test_id("welcome")).to_contain_text(email)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "signup-landing.png"), full_page=True)

    user = User.objects.get(email=email)
    assert user.is_active
    assert user_role(user) == "viewer"
    address = EmailAddress.objects.get(user=user, email=email)
    assert address.verified
    assert address.primary


def test_wrong_password_shows_an_error_and_does_not_log_in(page: Page, live_server):
    user = UserFactory(email="known@example.com", viewer=True)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)

    _log_in(page, user.email, "not-the-right-password-1")

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.locator("main")).to_contain_text("The email address and/or password you specified are not correct.")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)

    page.goto("/")
    expect(page.get_by_test_id("welcome")).to_have_count(0)
    expect(page.locator("header").get_by_role("link", name="Log in")).to_be_visible()
