"""English singulars for module names, from the `inflect` library.

The blueprint names things itself (copier.yml's `module_specs`) with a regular rule
so that a plain `copier copy` needs no extension; wellnest pins the singular in
the answers whenever inflect knows better (people -> person, news -> news).
"""

import sys
import types
from functools import cache
from typing import Any


@cache
def _engine() -> Any:
    # inflect decorates its API with typeguard's @typechecked, which re-parses the
    # module's source at import (about 2 s here). The checks only guard inflect's
    # own arguments, which we control, so import it with a no-op decorator.
    if "typeguard" in sys.modules:
        import inflect
    else:
        stub = types.ModuleType("typeguard")
        stub.typechecked = lambda func=None, **_: func or (lambda f: f)  # type: ignore[attr-defined]
        sys.modules["typeguard"] = stub
        try:
            import inflect
        finally:
            del sys.modules["typeguard"]
    return inflect.engine()


def singular(name: str) -> str:
    """The singular of a snake_case plural: only the last word changes."""
    *head, last = name.split("_")
    result = _engine().singular_noun(last)
    return "_".join([*head, result or last])


def plural_of_singular(name: str) -> str | None:
    """The plural of `name` when its last word is a singular noun, else None."""
    *head, last = name.split("_")
    engine = _engine()
    if engine.singular_noun(last) is not False:
        return None  # already a plural, or the same in both (news, series)
    plural = engine.plural_noun(last)
    return "_".join([*head, plural]) if plural and plural != last else None
