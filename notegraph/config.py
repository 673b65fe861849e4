"""Typed settings from notegraph.toml in the notes folder; a CLI flag overrides the file only when given."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from notegraph.errors import ConfigError

CONFIG_NAME = "notegraph.toml"
DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKEND_NAMES = ("torch", "openvino", "onnx")  # notegraph.embed.st.BACKENDS, named here without importing it


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. Documented in the README's configuration table."""

    notes_dir: Path = Path("notes")
    out: Path = Path("site")
    title: str = "notegraph"
    model: str = DEFAULT_MODEL
    device: str | None = None
    backend: str = "torch"  # sentence-transformers' inference backend: torch | openvino | onnx
    cache: Path | None = None  # default: <notes_dir>/.notegraph/cache.sqlite
    topics: tuple[str, ...] = ()  # the topic vocabulary (used to split imported topic lines)
    exclude: tuple[str, ...] = ()  # glob patterns relative to notes_dir
    similar_k: int = 5
    similar_threshold: float = 0.45
    related_k: int = 10
    ann_threshold: int = 10_000  # above this many notes, similar edges come from an HNSW index (usearch)
    allow_html: bool = False
    dialect: str = "auto"  # auto | obsidian | dendron | markdown
    max_note_mb: float = 8.0
    title_from_heading: bool = False  # a note opening with `# Heading` takes it as its title (else the file name)
    remote_images: bool = False  # show images from http(s) addresses (the pages then make outside requests)
    attachment_folder: str | None = None  # Obsidian's attachment folder; default: read from .obsidian/app.json
    strict: bool = False
    quiet: bool = False

    @property
    def cache_path(self) -> Path:
        return self.cache if self.cache is not None else self.notes_dir / ".notegraph" / "cache.sqlite"

    @property
    def state_dir(self) -> Path:
        return self.notes_dir / ".notegraph"


_FILE_KEYS = {f.name for f in fields(Settings)} - {"notes_dir", "strict", "quiet"}
_PATH_KEYS = {"out", "cache"}
_STATE_KEYS = {"cache"}  # files the build rewrites: from notegraph.toml, only inside <notes>/.notegraph/
_TUPLE_KEYS = {"topics", "exclude"}


def load_settings(notes_dir: Path, **overrides: Any) -> Settings:
    """Read <notes_dir>/notegraph.toml (if any), then apply the overrides that are not None."""
    notes_dir = Path(notes_dir)
    if not notes_dir.exists():
        raise ConfigError(f"notes folder '{notes_dir}' does not exist")
    if not notes_dir.is_dir():
        raise ConfigError(f"'{notes_dir}' is not a folder")
    values: dict[str, Any] = {}
    config_file = notes_dir / CONFIG_NAME
    try:  # read, not tested first: a file deleted in between (serve reads it on every save) is no file
        text: str | None = config_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_file}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{config_file}: cannot read: {exc.strerror or exc}") from None
    if text is not None:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
        raw = raw.get("notegraph", raw)
        for key, value in raw.items():
            if key not in _FILE_KEYS:
                raise ConfigError(f"{config_file}: unknown setting '{key}' (known: {', '.join(sorted(_FILE_KEYS))})")
            if overrides.get(key) is None:  # a flag given on the command line replaces the file's value unread
                values[key] = _coerce(config_file, key, value, base=notes_dir)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    settings = Settings(notes_dir=notes_dir, **values)
    if settings.similar_k < 0 or settings.related_k < 1:
        raise ConfigError("similar_k must be ≥ 0 and related_k ≥ 1")
    if settings.backend not in BACKEND_NAMES:
        raise ConfigError(f"unknown embedding backend '{settings.backend}' (known: {', '.join(BACKEND_NAMES)})")
    if settings.ann_threshold < 0:
        raise ConfigError("ann_threshold must be ≥ 0")
    return settings


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or below it once both are resolved (``..`` and symlinks followed)."""
    try:
        resolved, top = path.resolve(), folder.resolve()
    except (OSError, RuntimeError):
        return False
    return resolved == top or top in resolved.parents


def _coerce(config_file: Path, key: str, value: Any, base: Path) -> Any:
    default = getattr(Settings(), key)
    if key in _PATH_KEYS:
        if not isinstance(value, str):
            raise ConfigError(f"{config_file}: '{key}' must be a path string")
        path = Path(value)
        path = path if path.is_absolute() else base / path
        if key in _STATE_KEYS and not _inside(path, base / ".notegraph"):
            # a notes folder may come from someone else: what it says never writes outside its own state
            raise ConfigError(
                f'{config_file}: {key} = "{value}" points outside {base / ".notegraph"}; '
                f"a notes folder's settings may only write there (use --{key} on the command line)"
            )
        return path
    if key in _TUPLE_KEYS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{config_file}: '{key}' must be a list of strings")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{config_file}: '{key}' must be true or false")
        return value
    if isinstance(default, int | float) and not isinstance(value, bool) and isinstance(value, int | float):
        return type(default)(value)
    if isinstance(default, str) or default is None:
        if not isinstance(value, str):
            raise ConfigError(f"{config_file}: '{key}' must be a string")
        return value
    raise ConfigError(f"{config_file}: '{key}' has the wrong type ({type(value).__name__})")
