"""Per-remote fsspec storage options: ``KEY=VALUE`` text as stored, typed keywords as passed.

Options are kept as the text the user gave (``remote.NAME.datagit-option``,
one ``KEY=VALUE`` per value) and typed only when a content remote is opened,
so `remote list -v` shows exactly what was set. Typing is deliberately small:
``true``/``false`` become bools, canonical integers become ints, everything
else stays a string; a dotted key (``client_kwargs.region_name``) becomes a
nested dict, which is how s3fs and botocore take their sub-settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from datagit.errors import InvalidInputError

OptionValue = str | bool | int
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
# Names that usually hold a credential: their values are never printed.
_SECRET = re.compile(r"key|secret|token|passw|credential|connection_string|sas_|auth|private", re.I)
MASK = "****"
_EXAMPLE = "--option endpoint_url=http://127.0.0.1:9000"


def check_key(key: str, remote: str) -> str:
    """``key`` if it is a dotted identifier (``anon``, ``client_kwargs.region_name``)."""
    if not _KEY.match(key):
        raise InvalidInputError(
            f"remote {remote!r}: option name {key!r} is not valid",
            hint="use a keyword of the fsspec backend, dotted for nested settings, "
            "e.g. endpoint_url or client_kwargs.region_name",
        )
    return key


def option_text(key: str, value: OptionValue, remote: str) -> str:
    """The stored form of one option; refuses what could not round-trip as one line."""
    check_key(key, remote)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidInputError(
            f"remote {remote!r}: option {key!r} must be text, a bool or an int, "
            f"not {type(value).__name__}",
            hint="options are stored as text; nest with dotted names instead of dicts",
        )
    if not text:
        raise InvalidInputError(
            f"remote {remote!r}: option {key!r} has an empty value",
            hint=f"to remove it: `datagit remote modify {remote} --unset {key}`",
        )
    if any(c in text for c in "\n\r\0"):
        raise InvalidInputError(
            f"remote {remote!r}: the value of option {key!r} holds a newline or NUL",
            hint="give the value on one line",
        )
    return text


def split_option(arg: str, remote: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` (as typed after ``--option``) → (key, value)."""
    key, sep, value = arg.partition("=")
    if not sep:
        shown = arg if len(arg) <= 40 else arg[:40] + "…"
        raise InvalidInputError(
            f"remote {remote!r}: option {shown!r} is not KEY=VALUE",
            hint=f"write the name, '=', then the value, e.g. {_EXAMPLE}",
        )
    return check_key(key.strip(), remote), value


def parse_options(args: Iterable[str], remote: str) -> dict[str, str]:
    """``KEY=VALUE`` arguments → {key: value}; a key given twice is refused."""
    out: dict[str, str] = {}
    for arg in args:
        key, value = split_option(arg, remote)
        if key in out:
            raise InvalidInputError(
                f"remote {remote!r}: option {key!r} is given twice",
                hint="give each option once",
            )
        out[key] = option_text(key, value, remote)
    return out


def _typed(text: str) -> OptionValue:
    """``true``/``false`` → bool, a canonical integer → int, else the text itself.

    ``007`` or ``+5`` stay strings, so an account id with a leading zero keeps it.
    """
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[0-9]+", text) and str(int(text)) == text:
        return int(text)
    return text


def storage_options(options: Mapping[str, str], remote: str) -> dict[str, Any]:
    """The keyword arguments for ``fsspec.filesystem``: typed values, dotted keys nested.

    Keys are taken in sorted order, so ``a`` always comes before ``a.b``: a name
    that is both a value and a group is found when the group meets the value.
    """
    out: dict[str, Any] = {}
    for key in sorted(options):
        *parents, leaf = key.split(".")
        node = out
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _conflict(remote, key, ".".join(parents[: depth + 1]))
            node = child
        node[leaf] = _typed(options[key])
    return out


def _conflict(remote: str, nested: str, plain: str) -> InvalidInputError:
    return InvalidInputError(
        f"remote {remote!r}: option {nested!r} conflicts with option {plain!r}",
        hint=f"a name cannot be both a value and a group; unset one: "
        f"`datagit remote modify {remote} --unset {plain}`",
    )


def is_secret(key: str) -> bool:
    """Whether ``key`` looks like it holds a credential (its value is never shown)."""
    return bool(_SECRET.search(key))


def masked(options: Mapping[str, str]) -> dict[str, str]:
    """``options`` for display: secret-looking values replaced by ``****``."""
    return {k: MASK if is_secret(k) else v for k, v in sorted(options.items())}
