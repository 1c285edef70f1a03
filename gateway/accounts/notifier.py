"""Delivers notices to users (password-reset and verification tokens): email, webhook or log.

``accounts.notify`` chooses: ``"smtp"`` sends an email through ``[accounts.smtp]``
(aiosmtplib), ``"webhook"`` POSTs JSON to ``accounts.notify_webhook``, ``"log"`` writes the
notice, token included, to the log (for a trial, when the operator hands tokens over by hand).
Left empty it follows what is configured (webhook, else SMTP); with neither, nothing is
delivered and the log says so without the token: a token reaches the log only when the
operator has written ``notify = "log"``.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Literal

import aiohttp
import aiosmtplib
import structlog

from gateway.config import AccountsConfig, SmtpConfig

log = structlog.get_logger("gateway.accounts")

Mode = Literal["smtp", "webhook", "log", "off"]
_SUBJECTS = {
    "password_reset": "Reset your password",
    "verify_email": "Confirm your email address",
}


def delivery_mode(config: AccountsConfig) -> Mode:
    """How notices go out under ``config`` ("off": they cannot be delivered)."""
    if config.notify:
        return config.notify
    if config.notify_webhook:
        return "webhook"
    return "smtp" if config.smtp.host else "off"


class Notifier:
    """Sends one notice per call; a failed delivery is logged (without the token)."""

    def __init__(
        self, mode: Mode, webhook: str = "", smtp: SmtpConfig | None = None
    ) -> None:
        self.mode = mode
        self.webhook = webhook
        self.smtp = smtp or SmtpConfig()

    @classmethod
    def from_config(cls, config: AccountsConfig) -> Notifier:
        return cls(delivery_mode(config), config.notify_webhook, config.smtp)

    @property
    def delivers(self) -> bool:
        return self.mode != "off"

    async def notify(self, kind: str, email: str, **fields: str) -> None:
        if self.mode == "log":
            log.warning("notify_deliver_by_log", kind=kind, email=email, **fields)
        elif self.mode == "webhook":
            await self._post({"kind": kind, "email": email, **fields})
        elif self.mode == "smtp":
            await self._mail(kind, email, fields)
        else:
            log.warning("notify_not_delivered", kind=kind, email=email,
                        hint='set accounts.notify = "smtp" or "webhook" to deliver notices')

    async def _post(self, payload: dict[str, str]) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                self.webhook, json=payload
            ) as response:
                if response.status >= 400:
                    log.error("notify_failed", kind=payload["kind"], email=payload["email"],
                              status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("notify_failed", kind=payload["kind"], email=payload["email"],
                      error=type(exc).__name__)

    async def _mail(self, kind: str, email: str, fields: dict[str, str]) -> None:
        smtp = self.smtp
        message = EmailMessage()
        message["From"] = smtp.sender
        message["To"] = email
        message["Subject"] = _SUBJECTS.get(kind, "A notice from the gateway")
        message.set_content(
            "\n".join(f"{name}: {value}" for name, value in fields.items())
            + "\n\nIf you did not ask for this, ignore this message.\n"
        )
        try:
            await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password or None,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                timeout=10,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.error("notify_failed", kind=kind, email=email, error=type(exc).__name__)
