"""Data for the browser as JavaScript files: JSON that cannot break out of a script or a page.

Serialised with orjson: a site's pages, maps and their manifest keys are tens of megabytes of JSON,
which the standard library's encoder takes about ten times longer to write (``benchmarks/``)."""

from __future__ import annotations

from typing import Any

import orjson

_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def js_json(value: Any) -> str:
    """Compact, key-sorted JSON with ``< > &`` and U+2028/9 escaped (they can only occur inside strings).
    Non-finite floats become ``null`` (orjson's rule); the site never sends one."""
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    for char, escaped in _ESCAPES:  # str.replace is C-speed; str.translate with a dict is not
        if char in text:
            text = text.replace(char, escaped)
    return text


def js_call(function: str, *args: Any) -> str:
    """``window.NAME(arg, ...);`` - how data files register themselves (file:// forbids fetch of JSON)."""
    if not function.isidentifier():
        raise ValueError(f"not a JavaScript identifier: {function!r}")
    return f"window.{function}({','.join(js_json(a) for a in args)});\n"


def stable_json(value: Any) -> bytes:
    """The canonical form hashed for the manifest (UTF-8, compact, keys sorted)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
