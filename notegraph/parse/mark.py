"""`==highlighted text==` -> <mark>, as Obsidian writes highlights.

A port of markdown-it-mark (MIT, © Vitaly Puzrin, Alex Kocharin), through markdown-it-py's own
strikethrough rule, which is the same delimiter algorithm with `~`: mdit-py-plugins has no such plugin."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline.state_inline import Delimiter

_EQUALS = 0x3D


def _tokenize(state: StateInline, silent: bool) -> bool:
    if silent or state.src[state.pos] != "=":
        return False
    scanned = state.scanDelims(state.pos, True)
    length = scanned.length
    if length < 2:
        return False
    if length % 2:
        state.push("text", "", 0).content = "="
        length -= 1
    for _ in range(0, length, 2):
        state.push("text", "", 0).content = "=="
        if scanned.can_open or scanned.can_close:
            state.delimiters.append(
                Delimiter(marker=_EQUALS, length=0, token=len(state.tokens) - 1, end=-1, open=scanned.can_open, close=scanned.can_close)
            )
    state.pos += scanned.length
    return True


def _balance(state: StateInline, delimiters: list[Delimiter]) -> None:
    lone: list[int] = []
    for start in delimiters:
        if start.marker != _EQUALS or start.end == -1:
            continue
        end = delimiters[start.end]
        opening, closing = state.tokens[start.token], state.tokens[end.token]
        opening.type, opening.tag, opening.nesting, opening.markup, opening.content = "mark_open", "mark", 1, "==", ""
        closing.type, closing.tag, closing.nesting, closing.markup, closing.content = "mark_close", "mark", -1, "==", ""
        before = state.tokens[end.token - 1]
        if before.type == "text" and before.content == "=":
            lone.append(end.token - 1)
    # an odd run `=====` is split as `=` `==` `==`: its lone `=` moves after the closing tags
    while lone:
        i = lone.pop()
        j = i + 1
        while j < len(state.tokens) and state.tokens[j].type == "mark_close":
            j += 1
        j -= 1
        if i != j:
            state.tokens[i], state.tokens[j] = state.tokens[j], state.tokens[i]


def _post_process(state: StateInline) -> None:
    _balance(state, state.delimiters)
    for meta in state.tokens_meta:
        if meta and "delimiters" in meta:
            _balance(state, meta["delimiters"])


def mark_plugin(md: MarkdownIt) -> None:
    md.inline.ruler.before("emphasis", "mark", _tokenize)
    md.inline.ruler2.before("emphasis", "mark", _post_process)
