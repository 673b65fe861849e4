"""The model in a process of its own, so that the build never holds torch.

torch, sentence-transformers and the model's weights take about 850 MB of resident memory, and a
process that has imported torch keeps most of it after the model is gone. The embedding stage runs
before the graph and the site, which need the most memory, so the model runs in a child process that
ends when its texts are encoded: at 20,000 notes the build's peak is then the graph's alone.

The child (``python -m notegraph.embed.isolated``) loads the model with :func:`load_embedder` and answers
requests on its stdin/stdout, pickled: first the model's id and dimension (or the error that stopped it
loading), then one array per list of texts. Its stderr is the build's, so the progress bar and the
library's messages show as before. It ignores Ctrl-C (the build stops it) and ends when its stdin closes.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from notegraph.errors import ModelError


class IsolatedEmbedder:
    """An :class:`~notegraph.embed.Embedder` whose model lives in a child process."""

    def __init__(
        self, name: str, device: str | None = None, threads: int | None = None, show_progress: bool = False, backend: str = "torch"
    ) -> None:
        import notegraph

        root = str(Path(notegraph.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        self._child: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "notegraph.embed.isolated"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        hello = self._ask({"name": name, "device": device, "threads": threads, "show_progress": show_progress, "backend": backend})
        self.model_id: str = hello["model_id"]
        self.dim: int = int(hello["dim"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._ask({"texts": texts})["vectors"], dtype=np.float32)

    @property
    def pid(self) -> int | None:
        """The child's process id (None once closed)."""
        return self._child.pid if self._child is not None else None

    def close(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def __enter__(self) -> IsolatedEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_child", None) is not None:
            self.close()  # the child ends when its stdin closes

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        child = self._child
        if child is None or child.stdin is None or child.stdout is None:
            raise ModelError("the embedding process was closed")
        try:
            pickle.dump(request, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.flush()
            answer = pickle.load(child.stdout)
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError | EOFError | pickle.UnpicklingError):
                code = child.poll()
                raise ModelError(f"the embedding process ended unexpectedly (exit status {code})") from None
            raise  # Ctrl-C and the like: the child is stopped above
        if "error" in answer:
            self.close()
            raise ModelError(str(answer["error"]))
        return answer


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    from notegraph.embed.st import load_embedder

    def send(answer: dict[str, Any]) -> None:
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()

    try:
        spec = pickle.load(requests)
    except EOFError:
        return
    try:
        embedder = load_embedder(
            spec["name"], device=spec["device"], threads=spec["threads"], show_progress=spec["show_progress"], backend=spec["backend"]
        )
    except ModelError as exc:
        send({"error": str(exc)})
        return
    send({"model_id": embedder.model_id, "dim": embedder.dim})
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        try:
            send({"vectors": embedder.encode(request["texts"])})
        except ModelError as exc:
            send({"error": str(exc)})


def _main() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it closes our stdin or kills us
    # the protocol gets the real stdout; anything a library prints goes to stderr with its other messages
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _serve(sys.stdin.buffer, answers)
    except BrokenPipeError:
        pass  # the build has gone


if __name__ == "__main__":
    _main()
