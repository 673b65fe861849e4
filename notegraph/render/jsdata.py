"""Data for the browser as JavaScript files: JSON that cannot break out of a script or a page."""

from __future__ import annotations

import json
from typing import Any

_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def js_json(value: Any) -> str:
    """Compact, key-sorted JSON with ``< > &`` and U+2028/9 escaped (they can only occur inside strings)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    for char, escaped in _ESCAPES:  # str.replace is C-speed; str.translate with a dict is not
        if char in text:
            text = text.replace(char, escaped)
    return text


def js_call(function: str, *args: Any) -> str:
    """``window.NAME(arg, ...);`` - how data files register themselves (file:// forbids fetch of JSON)."""
    if not function.isidentifier():
        raise ValueError(f"not a JavaScript identifier: {function!r}")
    return f"window.{function}({','.join(js_json(a) for a in args)});\n"


def stable_json(value: Any) -> str:
    """The canonical form hashed for the manifest."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
