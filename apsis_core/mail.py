"""Plain-text mail, the same way from every part: the daemon's notices, ``apsis-sso account
invite`` and the portal's messages to the platform team.

The SMTP settings are the daemon's (``APSIS_SYNC_SMTP_*``, ``APSIS_SYNC_MAIL_FROM``,
``APSIS_SYNC_PLATFORM_TEAM_EMAIL``): one relay, one sender and one platform-team address
for everything this project mails, configured once. ``sync.settings.SyncSettings`` extends
``MailSettings``, so the daemon reads exactly these variables; the CLI and the portal load
``MailSettings`` on its own.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from apsis_core.settings import env_config, read_secret_file


class MailSettings(BaseSettings):
    model_config = env_config("APSIS_SYNC_")

    smtp_host: str | None = Field(None, description="SMTP relay for notifications; unset disables mail")
    smtp_port: int = Field(25, description="SMTP port")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS")
    smtp_ssl: bool = Field(False, description="Connect with implicit TLS (port 465 style)")
    smtp_username: str | None = Field(None, description="SMTP login")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_password_file: Path | None = Field(None, description="File holding the SMTP password")
    smtp_timeout: float = Field(30.0, description="Seconds per SMTP connection")
    mail_from: str = Field("apsis-sync@localhost", description="Sender address of notifications")
    platform_team_email: str | None = Field(None, description="Platform team address, copied on every notification")

    @model_validator(mode="after")
    def _read_password_file(self) -> MailSettings:
        if self.smtp_password is None and self.smtp_password_file:
            self.smtp_password = SecretStr(read_secret_file(self.smtp_password_file))
        return self

    @property
    def can_send(self) -> bool:
        return bool(self.smtp_host)


@dataclass(frozen=True)
class Mail:
    """One message: recipients, subject, text, and the ``X-...`` headers that label it."""

    to: tuple[str, ...]
    subject: str
    body: str
    cc: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


def send(settings: MailSettings, mail: Mail) -> None:
    """Deliver ``mail`` through the configured relay; raises ``OSError``/``SMTPException``
    (the caller decides whether a failure is fatal, retried or only logged)."""
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    if mail.to:
        msg["To"] = ", ".join(mail.to)
    if mail.cc:
        msg["Cc"] = ", ".join(mail.cc)
    msg["Subject"] = mail.subject
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or "apsis-sso")
    for name, value in mail.headers.items():
        msg[name] = value
    msg.set_content(mail.body)
    context = ssl.create_default_context()
    smtp_class = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
    kwargs: dict[str, Any] = {"timeout": settings.smtp_timeout}
    if settings.smtp_ssl:
        kwargs["context"] = context
    with smtp_class(settings.smtp_host or "", settings.smtp_port, **kwargs) as smtp:
        if settings.smtp_starttls and not settings.smtp_ssl:
            smtp.starttls(context=context)
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(msg, to_addrs=[*mail.to, *mail.cc])
