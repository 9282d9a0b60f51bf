"""Error reporting to Sentry, switched on by SENTRY_DSN and off without it."""

from typing import Any


def init_sentry(dsn: str | None, environment: str, **options: Any) -> bool:
    """Start the Sentry client when a DSN is configured; report whether it did."""
    if not dsn:
        return False
    # Imported here: without a DSN the SDK is never loaded (start-up time, memory).
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        # Sentry's defaults collect no personal data (emails, IPs); keep it so.
        traces_sample_rate=0.0,
        **options,
    )
    return True
