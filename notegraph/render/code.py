"""Fenced code -> highlighted HTML at build time (Pygments), and the stylesheet for its light and dark themes."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from markdown_it.common.utils import escapeHtml

LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
_LANG_RE = re.compile(r"^[\w+#.-]{1,40}$")


@cache
def _formatter() -> Any:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)


@lru_cache(maxsize=256)
def _lexer(lang: str) -> Any:
    """Pygments' lexer for a fence's language name or alias, or None for a language it does not know."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(lang, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def highlight_code(code: str, info: str) -> str:
    """A fenced block as ``<figure class="code">`` with its language as a label; the code highlighted
    when Pygments knows the language, plain (escaped) otherwise."""
    lang = info.strip().split(maxsplit=1)[0] if info.strip() else ""
    lexer = _lexer(lang.lower()) if lang and _LANG_RE.match(lang) else None
    if lexer is not None:
        from pygments import highlight

        body = highlight(code, lexer, _formatter())
    else:
        body = escapeHtml(code)
    label = f'<figcaption class="code__lang">{escapeHtml(lang)}</figcaption>' if lang else ""
    lang_class = f' class="language-{escapeHtml(lang)}"' if lang else ""
    return f'<figure class="code">{label}<pre class="highlight"><code{lang_class}>{body}</code></pre></figure>\n'


@cache
def code_css() -> str:
    """Token colours for light pages, and for dark ones (the system's choice); the background is the
    site's own, so code blocks sit in both themes."""
    from pygments.formatters import HtmlFormatter

    def rules(style: str, scope: str) -> str:
        lines = HtmlFormatter(style=style).get_style_defs(scope).splitlines()
        # the style's own background and line-number rules would fight the site's colours
        return "\n".join(line for line in lines if not re.match(r"^\S*\s*(\.hll|\.err|pre|td\.linenos|span\.linenos|\.linenos)\b|^\S+ \{ background", line))

    light = rules(LIGHT_STYLE, ".highlight")
    dark = rules(DARK_STYLE, ".highlight")
    dark_indented = "\n".join("  " + line for line in dark.splitlines())
    return f"/* code colours: Pygments '{LIGHT_STYLE}' (light) and '{DARK_STYLE}' (dark) */\n{light}\n@media (prefers-color-scheme: dark) {{\n{dark_indented}\n}}\n"
