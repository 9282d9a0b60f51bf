"""Outgoing email over SMTP (aiosmtplib), or into the log when SMTP is not set up.

A message may carry a secret (a reset link): the log never shows it. Sending
happens after the response (a background task), so a slow or failing mail
server neither delays nor fails the request that asked for the email.
"""

import logging
from email.message import EmailMessage

from app.core.config import Settings, settings

logger = logging.getLogger("app.email")

REDACTED = "[redacted]"


class Mailer:
    def __init__(self, config: Settings) -> None:
        self.config = config

    @property
    def configured(self) -> bool:
        return bool(self.config.SMTP_HOST)

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.EMAILS_FROM
        message["To"] = to
        message["Subject"] = subject
        # 7bit or 8bit, never quoted-printable: a long link must stay one line
        # that a developer can copy from a mail catcher (QP splits it and
        # writes "=" as "=3D", and the pasted link fails).
        message.set_content(body, cte="7bit" if body.isascii() else "8bit")
        return message

    async def send(self, message: EmailMessage, *, secret: str | None = None) -> bool:
        """Send one message; False (and one logged line) if it could not be.

        `secret` is the part of the body the log must never show."""
        if not self.configured:
            body = message.get_content()
            # On a developer's machine (ENVIRONMENT=local) the link is the
            # point of reading the log; anywhere else logs are shipped and kept.
            if secret and self.config.ENVIRONMENT != "local":
                body = body.replace(secret, REDACTED)
            logger.info(
                "SMTP_HOST is not set; email not sent. To: %s Subject: %s",
                message["To"],
                message["Subject"],
            )
            for line in body.splitlines():  # a line each: logs escape newlines
                logger.info("  %s", line)
            return False
        # Imported here: services that never send email never load the client.
        import aiosmtplib

        config = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.SMTP_HOST,
                port=config.SMTP_PORT,
                username=config.SMTP_USER,
                password=config.SMTP_PASSWORD,
                use_tls=config.SMTP_SECURITY == "tls",
                start_tls=config.SMTP_SECURITY == "starttls",
                timeout=config.SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The exception text is the server's answer or a socket error: it
            # never contains the message body.
            logger.error("Email to %s not sent: %s", message["To"], exc)
            return False
        return True


mailer = Mailer(settings)
