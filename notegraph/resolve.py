"""Raw links -> resolved links and diagnostics, the way Obsidian resolves them (ambiguity reported, never guessed)."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notegraph.model import Collection, Diagnostic, Link, Note, RawLink
from notegraph.parse.note import is_attachment


def _key(name: str) -> str:
    return " ".join(name.strip().lower().split())


def anchor_key(heading: str) -> str:
    """Headings match by their letters and digits: `#eip-editors`, `EIP Editors` and `EIP+Editors` agree.
    A nested heading link `[[Note#Part#Section]]` (Obsidian's) names its last heading."""
    last = next((part for part in reversed(heading.split("#")) if part.strip()), heading)
    return "".join(ch for ch in last.lower() if ch.isalnum())


def _strip_md(name: str) -> str:
    lower = name.lower()
    for suffix in (".md", ".markdown"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class NameIndex:
    """Lookup tables built once per collection: every resolution is a dict lookup, never a scan."""

    ids: dict[str, str] = field(default_factory=dict)  # lowercased id -> id
    by_stem: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_suffix: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # "folder/stem" tails
    by_title: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_alias: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, notes: Iterable[Note]) -> NameIndex:
        index = cls()
        for note in notes:
            lower = note.id.lower()
            index.ids[lower] = note.id
            parts = lower.split("/")
            index.by_stem[parts[-1]].append(note.id)
            for i in range(1, len(parts) - 1):
                index.by_suffix["/".join(parts[i:])].append(note.id)
            index.by_title[_key(note.title)].append(note.id)
            for alias in note.aliases:
                index.by_alias[_key(alias)].append(note.id)
        return index


class AttachmentIndex:
    """The files notes can embed, found as Obsidian finds them: a path relative to the linking note, then
    from the notes folder, then by name (or by the end of a partial path) anywhere, case-insensitively;
    among several, the one in the note's folder, then in the attachment folder, then the shortest path."""

    def __init__(self, paths: Iterable[str], folder: str = "") -> None:
        self.paths = {p.lower(): p for p in sorted(paths)}
        self.by_name: defaultdict[str, list[str]] = defaultdict(list)
        for lower, path in self.paths.items():
            self.by_name[lower.rsplit("/", 1)[-1]].append(path)
        self.folder = folder.strip().replace("\\", "/")

    def _attachment_folder(self, source_folder: str) -> str:
        folder = self.folder.rstrip("/")
        if folder in ("", "/"):
            return ""
        if folder == ".":
            return source_folder
        if folder.startswith("./"):
            return posixpath.normpath(posixpath.join(source_folder, folder[2:]))
        return folder.lstrip("/")

    def find(self, source_folder: str, target: str) -> str | None:
        """The attachment's path relative to the notes folder, or None when no file matches (or the
        path leaves the notes folder)."""
        name = target.strip().replace("\\", "/")
        if not name:
            return None
        if not name.startswith("/"):
            joined = posixpath.normpath(posixpath.join(source_folder, name))
            if not (joined == ".." or joined.startswith("../")):
                found = self.paths.get(joined.lower())
                if found:
                    return found
        absolute = posixpath.normpath(name.lstrip("/"))
        if absolute == ".." or absolute.startswith("../"):
            return None
        found = self.paths.get(absolute.lower())
        if found:
            return found
        lower = absolute.lower()
        candidates = self.by_name.get(lower.rsplit("/", 1)[-1], [])
        if "/" in lower:
            candidates = [c for c in candidates if c.lower().endswith("/" + lower)]
        if not candidates:
            return None
        preferred = self._attachment_folder(source_folder)
        return min(
            candidates,
            key=lambda c: (posixpath.dirname(c) != source_folder, posixpath.dirname(c) != preferred, c.count("/"), c),
        )


@dataclass(frozen=True)
class Resolution:
    status: str
    target: str | None = None
    candidates: tuple[str, ...] = ()
    message: str = ""


def _pick(candidates: Sequence[str], source_folder: str) -> Resolution:
    unique = sorted(set(candidates))
    if len(unique) == 1:
        return Resolution("ok", unique[0])
    same_folder = [c for c in unique if posixpath.dirname(c) == source_folder]
    if len(same_folder) == 1:
        return Resolution("ok", same_folder[0])
    depth = min(c.count("/") for c in unique)
    shortest = [c for c in unique if c.count("/") == depth]
    if len(shortest) == 1:
        return Resolution(
            "ok",
            shortest[0],
            tuple(unique),
            f"resolved to '{shortest[0]}' by shortest path; other candidates: {', '.join(c for c in unique if c != shortest[0])}",
        )
    return Resolution("ambiguous", None, tuple(unique), f"matches {len(unique)} notes: {', '.join(unique)}")


def resolve_target(index: NameIndex, source: Note, raw: RawLink) -> Resolution:
    """Resolve one link target from ``source``. Pure lookups; no file system access."""
    target = raw.target.strip().replace("\\", "/")
    if not target:
        return Resolution("ok", source.id)  # [[#Heading]]: a link into the note itself
    if is_attachment(target):
        return Resolution("attachment")
    name = _strip_md(target)
    if raw.style == "markdown" and not name.startswith("/"):
        joined = posixpath.normpath(posixpath.join(source.folder, name))
        if joined == ".." or joined.startswith("../"):
            return Resolution("outside", message="points outside the notes folder; not followed")
        found = index.ids.get(joined.lower())
        if found:
            return Resolution("ok", found)
    name = name.lstrip("/")
    if name.startswith("../") or "/../" in name or name == "..":
        return Resolution("outside", message="points outside the notes folder; not followed")
    lower = _key(name) if "/" not in name else name.lower()
    if "/" in name:
        exact = index.ids.get(lower)
        if exact:
            return Resolution("ok", exact)
        candidates = index.by_suffix.get(lower, [])
        if candidates:
            return _pick(candidates, source.folder)
        return Resolution("dangling")
    for table in (index.by_stem, index.by_title, index.by_alias):
        candidates = table.get(lower, [])
        if candidates:
            return _pick(candidates, source.folder)
    return Resolution("dangling")


def resolve(
    root: str,
    notes: Sequence[Note],
    parse_diagnostics: Iterable[Diagnostic] = (),
    *,
    memo: Path | None = None,
    parsed_by: str = "",
    memory: ResolveMemory | None = None,
    attachments: Mapping[str, tuple[int, int]] | None = None,
    attachment_folder: str = "",
) -> Collection:
    """Resolve every note's links; report dangling, ambiguous and outside links and duplicate titles.

    ``memo``: where each note's resolved links are kept between builds (see ``_Memo``): a note whose
    file and every note's names are unchanged gets its links from there. ``parsed_by``: the settings
    the notes were parsed with (a file's links are a function of its bytes, the parser's code and
    these). ``memory``: the memo as the last build in this process left it (see ``ResolveMemory``).
    ``attachments``: the files notes can embed (path -> size, mtime); an embed of none is reported."""
    ordered = sorted(notes, key=lambda n: n.id)
    by_id = {note.id: note for note in ordered}
    attachments = dict(attachments or {})
    files = AttachmentIndex(attachments, attachment_folder)
    names_extra = f"{attachment_folder}\0" + "\0".join(sorted(attachments))
    kept = _Memo(memo, ordered, parsed_by, memory, names_extra) if memo is not None and len(by_id) == len(ordered) else None  # one note per id
    index: NameIndex | None = None  # made when a note's links are resolved
    diagnostics = list(parse_diagnostics)
    links: list[Link] = []
    # a name resolves the same way from every note of a folder (a link to itself aside): each is looked
    # up once per folder and style
    known: dict[tuple[str, str, str], Resolution] = {}
    for note in ordered:
        found = kept.links(note) if kept is not None else None
        if found is None:
            if index is None:
                index = NameIndex.build(ordered)
            positions, own_links, own_diagnostics = _resolve_note(note, index, by_id, known, files)
            if kept is not None:
                kept.resolved(note, positions, own_links, own_diagnostics)
            found = own_links, own_diagnostics
        if kept is not None:
            kept.took(note, found)
        links.extend(found[0])
        diagnostics.extend(found[1])
    if kept is not None:
        kept.save()
    diagnostics.extend(_duplicate_titles(ordered))
    return Collection(
        root=root,
        notes=by_id,
        links=tuple(links),
        diagnostics=tuple(sorted(set(diagnostics))),
        parsed_by=parsed_by,
        attachments=attachments,
        attachment_folder=attachment_folder,
    )


def _resolve_note(
    note: Note, index: NameIndex, by_id: Mapping[str, Note], known: dict[tuple[str, str, str], Resolution], files: AttachmentIndex
) -> tuple[list[int], list[Link], list[Diagnostic]]:
    """A note's links resolved, with where each stands among the note's raw links, and the problems
    found. ``known``: resolutions by (target, style, folder), shared across the notes of a build.
    Links to attachments are checked against ``files`` and are not part of the graph."""
    resolved: list[tuple[int, RawLink, Resolution]] = []
    missing: list[Diagnostic] = []
    folder = note.folder
    for position, raw in enumerate(note.links):
        if not raw.target.strip():
            res = resolve_target(index, note, raw)
        else:
            cached = known.get((raw.target, raw.style, folder))
            res = known[(raw.target, raw.style, folder)] = cached or resolve_target(index, note, raw)
        if res.status != "attachment":
            resolved.append((position, raw, res))
        elif files.find(folder, raw.target) is None:
            what = "embeds" if raw.embed else "links to"
            missing.append(Diagnostic(note.path, raw.line, "warning", "missing-attachment", f"{what} '{raw.target}', which is not a file in the notes folder"))
    titles = _titles([(raw, res) for _position, raw, res in resolved], by_id)
    links: list[Link] = []
    diagnostics: list[Diagnostic] = missing
    for _position, raw, res in resolved:
        if res.status == "dangling":
            diagnostics.append(Diagnostic(note.path, raw.line, "warning", "dangling-link", f"{_describe(raw)} points to no note"))
        elif res.status == "ambiguous":
            diagnostics.append(Diagnostic(note.path, raw.line, "warning", "ambiguous-link", f"{_describe(raw)} is ambiguous: {res.message}"))
        elif res.status == "outside":
            diagnostics.append(Diagnostic(note.path, raw.line, "warning", "outside-link", f"{_describe(raw)} {res.message}"))
        elif res.message:
            diagnostics.append(Diagnostic(note.path, raw.line, "warning", "ambiguous-link", f"{_describe(raw)} {res.message}"))
        if res.status == "ok" and res.target is not None:
            _check_anchor(by_id[res.target], raw, note, diagnostics)
        status = res.status if res.status in ("ok", "dangling", "ambiguous", "outside") else "dangling"
        context = _context_with_titles(raw.context, titles) if titles and raw.context else raw.context
        if context != raw.context:
            raw = _with_context(raw, context)
        links.append(Link(source=note.id, raw=raw, status=status, target=res.target, candidates=res.candidates))  # type: ignore[arg-type]
    return [position for position, _raw, _res in resolved], links, diagnostics


def _with_context(raw: RawLink, context: str) -> RawLink:
    """``dataclasses.replace(raw, context=context)`` without its field-by-field ``__init__``: a third of
    resolving 25,000 links, half of whose contexts name a title. RawLink has no ``__post_init__``."""
    copy = object.__new__(RawLink)
    copy.__dict__.update(raw.__dict__, context=context)
    return copy


class ResolveMemory:
    """What a process that builds again and again (``serve``) keeps of the last build's memo: its
    names key, its entries (what the file holds, so it is not read again) and each note's links and
    diagnostics as objects, under the note's content hash (so they are not made again from the entry)."""

    def __init__(self) -> None:
        self.names = ""
        self.entries: dict[str, list[Any]] = {}
        self.found: dict[str, tuple[str, list[Link], list[Diagnostic]]] = {}


class _Memo:
    """Each note's resolved links and their diagnostics, kept between builds in one JSON file (not
    pickle: it lives in a notes folder that may come from someone else).

    A note's links resolve from its own links (its file) and from every note's names: ids, paths,
    titles, aliases, headings and block ids (the targets, the anchors checked, the titles put into
    contexts, the paths diagnostics name), with notegraph's code and the parse settings. So the file is
    used only under the same names key, and a note's entry only for the same file (its content hash).
    Entries of notes resolved again replace theirs; entries of notes that are gone are dropped. A
    damaged file is no file."""

    FORMAT = 1

    def __init__(self, path: Path, notes: Sequence[Note], parsed_by: str, memory: ResolveMemory | None = None, extra: str = "") -> None:
        import hashlib

        import orjson

        from notegraph.version import code_version

        self.path = path
        self._ids = {n.id for n in notes}
        names = [[n.id, n.path, n.title, list(n.aliases), list(n.headings), list(n.blocks)] for n in notes]
        # ``extra``: the rest of what resolving reads (the attachments notes can embed)
        self.names = hashlib.sha256(f"{code_version()}\0{parsed_by}\0{extra}\0".encode() + orjson.dumps(names)).hexdigest()
        self.entries: dict[str, list[Any]] = {}
        self.fresh: dict[str, list[Any]] = {}
        self.memory = memory
        self._remembered: dict[str, tuple[str, list[Link], list[Diagnostic]]] = {}
        if memory is not None and memory.names == self.names:
            self.entries = memory.entries
            self._remembered = memory.found
        else:
            try:
                data = orjson.loads(path.read_bytes())
                if isinstance(data, dict) and data.get("format") == self.FORMAT and data.get("names") == self.names and isinstance(data.get("notes"), dict):
                    self.entries = data["notes"]
            except (OSError, ValueError):
                pass
        self.changed = not self.entries
        self._found: dict[str, tuple[str, list[Link], list[Diagnostic]]] = {}

    def links(self, note: Note) -> tuple[list[Link], list[Diagnostic]] | None:
        """The note's kept links and diagnostics, if its entry is for this file; None otherwise."""
        remembered = self._remembered.get(note.id)
        if remembered is not None and remembered[0] == note.content_hash and note.content_hash and note.id in self.entries:
            return list(remembered[1]), list(remembered[2])
        entry = self.entries.get(note.id)
        if entry is None:
            return None
        try:
            content_hash, kept_links, kept_diagnostics = entry
            if content_hash != note.content_hash or not note.content_hash:
                return None
            own = note.links
            links = []
            for position, status, target, candidates, context in kept_links:
                raw = own[position]
                if context is not None:
                    raw = _with_context(raw, context)
                links.append(Link(note.id, raw, status, target, tuple(candidates)))
            return links, [Diagnostic(*item) for item in kept_diagnostics]
        except (ValueError, TypeError, IndexError):
            return None  # a damaged entry is resolved again

    def resolved(self, note: Note, positions: list[int], links: list[Link], diagnostics: list[Diagnostic]) -> None:
        """Keep a note's links, resolved in this build (``positions``: each one's raw link in the note)."""
        raws = note.links
        self.fresh[note.id] = [
            note.content_hash,
            [
                [position, link.status, link.target, list(link.candidates), link.raw.context if link.raw is not raws[position] else None]
                for position, link in zip(positions, links, strict=True)
            ],
            [[d.path, d.line, d.severity, d.code, d.message] for d in diagnostics],
        ]
        self.changed = True

    def took(self, note: Note, found: tuple[list[Link], list[Diagnostic]]) -> None:
        """The note's links and diagnostics in this build, for the memory."""
        if self.memory is not None:
            self._found[note.id] = (note.content_hash, found[0], found[1])

    def save(self) -> None:
        import orjson

        from notegraph.fsutil import atomic_write_bytes

        kept = {note_id: entry for note_id, entry in self.entries.items() if note_id in self._ids}
        entries = {**kept, **self.fresh}
        written = True
        if self.changed or len(kept) != len(self.entries):
            try:
                atomic_write_bytes(self.path, orjson.dumps({"format": self.FORMAT, "names": self.names, "notes": entries}))
            except OSError:
                written = False  # only costs the next build its shortcut
        if self.memory is not None:
            # what the file now holds (forgotten when it could not be written: the next build reads it)
            self.memory.names = self.names if written else ""
            self.memory.entries = entries if written else {}
            self.memory.found = self._found if written else {}


def with_titles(text: str, names: Mapping[str, str]) -> str:
    """``text`` (a passage, a lede) with each link target named in ``names`` replaced by its title."""
    return _context_with_titles(text, names) if names and text else text


def _titles(resolved: Sequence[tuple[RawLink, Resolution]], by_id: Mapping[str, Note]) -> dict[str, str]:
    """A note's link targets written without shown text (`topic-drift`), with the titles of the notes
    they resolved to."""
    return {raw.target: by_id[res.target].title for raw, res in resolved if res.status == "ok" and res.target and not raw.shown and raw.target}


def _context_with_titles(context: str, titles: Mapping[str, str]) -> str:
    """Context sentences show a link without shown text by its raw target (`topic-drift`); readers
    should see the note's title instead, as the rendered page does."""
    for raw_target in sorted((t for t in titles if t in context), key=len, reverse=True):
        context = _replace_whole(context, raw_target, titles[raw_target])
    return context


def _replace_whole(text: str, old: str, new: str) -> str:
    """Replace ``old`` where it stands as a whole name (not inside a longer word or hyphenated name)."""
    out: list[str] = []
    pos = 0
    while (found := text.find(old, pos)) >= 0:
        end = found + len(old)
        before = text[found - 1] if found else " "
        after = text[end] if end < len(text) else " "
        whole = not (before.isalnum() or before in "-_") and not (after.isalnum() or after in "-_")
        out.append(text[pos:found])
        out.append(new if whole else old)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _describe(raw: RawLink) -> str:
    if raw.style == "markdown":
        return f"link '{raw.target}'"
    anchor = f"#{raw.heading}" if raw.heading else (f"#^{raw.block}" if raw.block else "")
    return f"link [[{raw.target}{anchor}]]"


def _check_anchor(target: Note, raw: RawLink, source: Note, diagnostics: list[Diagnostic]) -> None:
    if raw.heading:
        wanted = anchor_key(raw.heading)
        if not any(anchor_key(h) == wanted for h in target.headings):
            diagnostics.append(
                Diagnostic(source.path, raw.line, "warning", "dangling-heading", f"{_describe(raw)}: heading '{raw.heading}' not found in {target.path}")
            )
    if raw.block and raw.block not in target.blocks:
        diagnostics.append(
            Diagnostic(source.path, raw.line, "warning", "dangling-block", f"{_describe(raw)}: block ^{raw.block} not found in {target.path}")
        )


def _duplicate_titles(notes: Sequence[Note]) -> list[Diagnostic]:
    by_title: defaultdict[str, list[Note]] = defaultdict(list)
    for note in notes:
        by_title[_key(note.title)].append(note)
    out = []
    for group in by_title.values():
        if len(group) > 1:
            for note in group:
                others = ", ".join(n.path for n in group if n is not note)
                out.append(Diagnostic(note.path, 1, "warning", "duplicate-title", f"title '{note.title}' is also used by {others}"))
    return out
