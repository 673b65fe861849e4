"""What gets embedded for a note: its clean text split into title-prefixed chunks, and their hashes.

A note becomes the text ``"title. claim. lede. body"`` (empty and repeated parts dropped, URLs and file
paths removed, whitespace collapsed). A short note is one chunk. A long note is cut on sentence
boundaries into chunks of at most ``max_words`` words, each starting with the note's title so that
every chunk says which note it belongs to. The note's vector is the L2-normalised mean of its chunk
vectors (see :func:`notegraph.embed.embed_notes`).

180 words stays well under the 256 word pieces all-MiniLM-L6-v2 reads (a word is ~1.3 pieces in
English prose), so nothing is silently truncated by the model.
"""

from __future__ import annotations

import hashlib
import math
import re

from notegraph.model import Note

DEFAULT_MAX_WORDS = 180

_URL = re.compile(r"""(?:\b(?:https?|ftp|file)://|\bwww\.|\bmailto:)[^\s<>"]*[^\s<>".,;:!?)\]'’”]""", re.IGNORECASE)
# Only things that are unmistakably paths: rooted (/x, ./x, ../x, ~/x), Windows drive paths, or
# relative paths ending in a file extension. "and/or", "TCP/IP" and dates like 12/05/2020 survive.
_ROOTED_PATH = re.compile(r"(?<![\w/.~])(?:~|\.{1,2})?/(?:[\w.@%+~-]+/)*[\w.@%+~-]+/?")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\s\\]+\\)*[^\s\\]*")
_RELATIVE_FILE = re.compile(r"(?<![\w/.])(?:[\w.@%+~-]+/)+[\w@%+~-]+\.[A-Za-z][A-Za-z0-9]{0,4}\b")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|<\s*>")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_SENTENCE_END = re.compile(r"""(?<=[.!?…])\s+|(?<=[.!?…]["'’”)\]])\s+""")
_WORDS = re.compile(r"\w+")
_ENDS_SENTENCE = re.compile(r"""[.!?…:;]["'’”)\]]*$""")


def clean_text(text: str) -> str:
    """Plain text with URLs and file paths removed and whitespace collapsed.

    Links and paths are noise to a sentence model: they eat word pieces and pull unrelated notes
    together because they share a domain name.
    """
    text = _URL.sub(" ", text)
    text = _WINDOWS_PATH.sub(" ", text)
    text = _ROOTED_PATH.sub(" ", text)
    text = _RELATIVE_FILE.sub(" ", text)
    text = _EMPTY_BRACKETS.sub(" ", text)
    text = " ".join(text.split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def split_sentences(text: str) -> list[str]:
    """Sentences of already collapsed text; a rough split is enough because chunks only need seams."""
    return [s for s in _SENTENCE_END.split(text) if s]


def note_chunks(note: Note, max_words: int = DEFAULT_MAX_WORDS) -> list[str]:
    """The texts to embed for ``note``, in order; empty only when the note has no title and no text.

    Every chunk has at most ``max_words`` words. See the module docstring for what is combined.
    """
    if max_words < 8:
        raise ValueError(f"max_words must be at least 8, got {max_words}")
    title = clean_text(note.title or "")
    body = clean_text(note.text or "")
    parts = [title] if title else []
    seen = [_norm(title)] if title else []
    body_norm = f" {_norm(body)} "
    for extra in (note.claim or "", note.lede or ""):
        extra = clean_text(extra)
        key = _norm(extra)
        # The lede is usually the body's first paragraph: keep it only when it adds something.
        if key and key not in seen and f" {key} " not in body_norm:
            parts.append(extra)
            seen.append(key)
    if body and body_norm.strip() not in seen:
        parts.append(body)
    if not parts:
        return []
    full = " ".join([_with_stop(p) for p in parts[:-1]] + parts[-1:])
    if len(full.split()) <= max_words:
        return [full]

    # A long title would leave no room for content; a few words are enough to tie a chunk to its note.
    prefix_words = _with_stop(title).split()[: max(1, max_words // 4)] if title else []
    prefix = " ".join(prefix_words)
    budget = max_words - len(prefix_words)
    rest = parts[1:] if title else parts
    sentences = [s for part in [_with_stop(p) for p in rest[:-1]] + rest[-1:] for s in split_sentences(part)]
    return [f"{prefix} {piece}" if prefix else piece for piece in _pack(sentences, budget)]


def text_hash(model_id: str, text: str) -> str:
    """sha256 hex of the exact text; the model id is a separate key column in the cache, not hashed in."""
    del model_id  # part of the signature so callers always think of (model, text) as the key
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pack(sentences: list[str], budget: int) -> list[str]:
    """Greedy packing of sentences into pieces of at most ``budget`` words, sizes evened out.

    Aiming at an even size rather than filling each piece avoids a tiny last chunk that would weigh
    as much as a full one in the note's mean vector.
    """
    pieces: list[list[str]] = []
    words_of = [s.split() for s in sentences]
    total = sum(len(w) for w in words_of)
    target = math.ceil(total / math.ceil(total / budget)) if total else budget
    current: list[str] = []
    for words in words_of:
        while len(words) > budget:  # a run-on "sentence" (a list, a table) is cut at word boundaries
            if current:
                pieces.append(current)
                current = []
            pieces.append(words[:budget])
            words = words[budget:]
        overshoot = len(current) + len(words) - target
        if current and (len(current) + len(words) > budget or overshoot > target - len(current)):
            pieces.append(current)
            current = []
        current = current + words
    if current:
        pieces.append(current)
    return [" ".join(p) for p in pieces]


def _with_stop(part: str) -> str:
    return part if _ENDS_SENTENCE.search(part) else part + "."


def _norm(text: str) -> str:
    """Words only, case folded: what decides whether two parts say the same thing."""
    return " ".join(_WORDS.findall(text.casefold()))
