"""The development mail backend (`EMAIL_URL=consolemail://`, the default of `make run`): mail easy to find.

Django's console backend printed each mail as raw MIME among the web server's log lines, where a sign-up's
confirmation link was hard to spot. This backend saves each mail whole as a `.eml` file under `var/mail/` and prints
a framed block on the console with who it is for, its subject, every link in it (the confirmation or reset link)
and the file's path.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

LINK = re.compile(r"https?://[^\s<>\"']+")
BAR = "=" * 78


def mail_links(message: EmailMessage) -> list[str]:
    """The distinct links of a mail's text body, in order."""
    return list(dict.fromkeys(LINK.findall(str(message.body))))


class DevelopmentEmailBackend(BaseEmailBackend):
    """Saves each mail to `<mail_dir>/<time>-<n>.eml` (default: `SENSORHUB_VAR_DIR/mail`) and prints a framed
    summary of it to `stream` (standard output by default)."""

    def __init__(
        self,
        *,
        mail_dir: str | Path | None = None,
        stream: TextIO | None = None,
        fail_silently: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kw)
        self.mail_dir = Path(mail_dir) if mail_dir is not None else Path(settings.VAR_DIR) / "mail"
        self.stream = stream or sys.stdout

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
            path = self.mail_dir / f"{stamp}-{sent}.eml"
            path.write_bytes(message.message().as_bytes())
            lines = [
                BAR,
                f"MAIL (development: not sent) to {', '.join(message.to)}",
                f"Subject: {message.subject}",
            ]
            lines += [f"Link: {link}" for link in mail_links(message)]
            lines += [f"Saved as {path.resolve()}", BAR]
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            sent += 1
        return sent
