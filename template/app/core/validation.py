"""Input types shared by every schema."""

from typing import Annotated

from pydantic import AfterValidator


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refuse it everywhere for the same behaviour.
    if "\x00" in value:
        msg = "must not contain NUL characters"
        raise ValueError(msg)
    return value


SafeText = Annotated[str, AfterValidator(_reject_nul)]
