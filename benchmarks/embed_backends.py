"""Texts per second of the embedding backends on the same texts, and their agreement with torch.

    python benchmarks/embed_backends.py [--texts 512] [--notes DIR]

Backends:
  torch      SentenceTransformer(bundled all-MiniLM-L6-v2), what notegraph uses today
  st-onnx    SentenceTransformer(path, backend="onnx") (needs optimum-onnx; reported if unavailable)
  st-openvino SentenceTransformer(path, backend="openvino") (needs optimum-intel; reported if unavailable)
  notegraph --backend openvino   the same through notegraph's loader (bash scripts/install.sh --openvino)
  ort        the same transformer exported locally with torch.onnx.export, run by onnxruntime, with
             sentence-transformers' mean pooling and normalisation done in numpy (no network, no optimum)
  openvino   that ONNX file compiled by OpenVINO for the CPU
Agreement is the cosine between each backend's vector and torch's for the same text (target >= 0.999).
Texts are the chunks notegraph embeds for a synthetic collection (benchmarks/generate.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BATCH = 32


def sample_texts(count: int, notes_dir: Path | None) -> list[str]:
    from notegraph.embed.text import note_chunks
    from notegraph.parse import read_notes

    if notes_dir is None:
        notes_dir = Path(tempfile.mkdtemp(prefix="ng-backends-")) / "notes"
        sys.path.insert(0, str(HERE))
        from generate import generate

        generate(max(200, count // 2), notes_dir, seed=0)
    notes, _diags = read_notes(notes_dir)
    texts = list(dict.fromkeys(chunk for note in sorted(notes, key=lambda n: n.id) for chunk in note_chunks(note)))
    return texts[:count]


def timed(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[float, np.ndarray]:
    encode(texts[:BATCH])  # warm-up: first-call allocations and kernel selection
    start = time.perf_counter()
    out = encode(texts)
    return time.perf_counter() - start, out


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mask = mask[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def export_onnx(model_dir: Path, out: Path) -> None:
    """Export the bare transformer (token embeddings) with dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model_dir)).eval()

    class TokenEmbeddings(torch.nn.Module):
        """Keyword arguments only: the positional order of BertModel.forward changes between releases."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    model = TokenEmbeddings().eval()
    dummy = {
        "input_ids": torch.ones((2, 16), dtype=torch.long),
        "attention_mask": torch.ones((2, 16), dtype=torch.long),
        "token_type_ids": torch.zeros((2, 16), dtype=torch.long),
    }
    axes = {0: "batch", 1: "seq"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (dummy["input_ids"], dummy["attention_mask"], dummy["token_type_ids"]),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )


def make_runner(tokenizer: object, max_len: int, run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    def encode(texts: list[str]) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            rows = order[start : start + BATCH]
            enc = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_len, return_tensors="np")  # type: ignore[operator]
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            out[rows] = _mean_pool(run(feeds), feeds["attention_mask"])
        return out

    return encode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--notes", type=Path, default=None, help="notes folder to take texts from (default: a generated one)")
    args = parser.parse_args(argv)

    from notegraph.embed import verify_bundled

    model_dir = verify_bundled()
    texts = sample_texts(args.texts, args.notes)
    print(f"{len(texts)} texts (notegraph chunks of synthetic notes), batch {BATCH}, {os.cpu_count()} CPUs")

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    max_len = int(st.max_seq_length)

    def st_encode(model: SentenceTransformer) -> Callable[[list[str]], np.ndarray]:
        return lambda t: model.encode(t, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    results: list[tuple[str, str]] = []
    base_s, base = timed(st_encode(st), texts)
    results.append(("torch (sentence-transformers)", f"{len(texts) / base_s:7.1f} texts/s  (reference)"))

    def report(name: str, seconds: float, vectors: np.ndarray) -> None:
        cos = np.sum(vectors * base, axis=1) / np.linalg.norm(vectors, axis=1)
        results.append((name, f"{len(texts) / seconds:7.1f} texts/s  {base_s / seconds:5.2f}x torch; cosine vs torch mean {cos.mean():.6f}, min {cos.min():.6f}"))

    for backend in ("onnx", "openvino"):
        name = f"st backend={backend!r}"
        try:
            model = SentenceTransformer(str(model_dir), device="cpu", backend=backend, local_files_only=True)
            seconds, vectors = timed(st_encode(model), texts)
            report(name, seconds, vectors)
        except Exception as exc:  # missing optimum extras, export failures: report them, keep going
            results.append((name, f"unavailable: {type(exc).__name__}: {' '.join(str(exc).split())[:220]}"))

    # what `notegraph build --backend openvino` runs: notegraph's loader (export kept in the user cache)
    from notegraph.embed import load_embedder

    name = "notegraph --backend openvino"
    try:
        embedder = load_embedder(device="cpu", backend="openvino")
        seconds, vectors = timed(embedder.encode, texts)
        report(name, seconds, vectors)
    except Exception as exc:  # noqa: BLE001 - a ModelError names the install step
        results.append((name, f"unavailable: {' '.join(str(exc).split())[:220]}"))

    tokenizer = st.tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "minilm.onnx"
        try:
            export_onnx(model_dir, onnx_path)
        except Exception as exc:
            results.append(("torch.onnx.export", f"failed: {type(exc).__name__}: {exc}"))
            onnx_path = None  # type: ignore[assignment]
        if onnx_path is not None:
            try:
                import onnxruntime as ort

                session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
                seconds, vectors = timed(make_runner(tokenizer, max_len, lambda f: session.run(None, f)[0]), texts)
                report(f"onnxruntime {ort.__version__} (local export)", seconds, vectors)
            except ImportError as exc:
                results.append(("onnxruntime", f"unavailable: {exc}"))
            try:
                import openvino as ov

                compiled = ov.Core().compile_model(str(onnx_path), "CPU")
                output = compiled.output(0)
                seconds, vectors = timed(make_runner(tokenizer, max_len, lambda f: compiled(f)[output]), texts)
                report(f"openvino {ov.__version__.split('-')[0]} (same ONNX file)", seconds, vectors)
            except ImportError as exc:
                results.append(("openvino", f"unavailable: {exc}"))
    width = max(len(name) for name, _ in results)
    for name, line in results:
        print(f"{name:<{width}}  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
