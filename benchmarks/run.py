"""Stage-by-stage build benchmark on synthetic collections, with the whole CLI as the headline figure.

    python benchmarks/run.py --sizes 1000 5000 20000 [--scenarios cold,nochange,edit,rerender]
                             [--fake-embedder | --fake-from 20000] [--cold-max 5000] [--json FILE]

Scenarios, run in this order on one collection per size (made by ``benchmarks/generate.py``):
  cold      empty caches: no parse cache, no embedding cache, no site, no model digest stamp
  nochange  rebuild with nothing changed
  edit      one note's body edited (the note is restored afterwards)
  rerender  site, parse cache and facts memo deleted, embedding cache kept
  live      `notegraph serve`'s rebuild after one note's body is edited, in a process that has built
            before (model loaded, notes and vectors kept: pipeline.Warm); three edits and the revert

Each scenario but ``live`` runs twice, each time in a fresh child process: once calling the pipeline's stage
functions directly (parse, resolve, embed, graph, render, write, each timed), once as the whole
``notegraph build`` CLI for the headline figure. Memory is resident set size measured by the kernel,
so it includes torch, the model and numpy buffers: per stage the high-water mark (VmHWM, reset before
each stage through /proc/self/clear_refs), per CLI run the child's ru_maxrss from wait4().

The cold embed stage is compared in the same child with the raw model (``SentenceTransformer.encode``
alone, same texts, same batch size). The fake embedder (notegraph's hashing FakeEmbedder at dim 384,
so matrix sizes match MiniLM) makes the other stages measurable at large N in minutes; the output
says which embedder every figure used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = ("cold", "nochange", "edit", "rerender", "live")
STAGES = ("import", "parse", "resolve", "embed", "graph", "render", "write")
FAKE_DIM = 384
FAKE_ID = f"fake/hash-{FAKE_DIM}"
# Quartz figures quoted in the issue: full builds of the same sizes.
QUARTZ_S = {1000: 8.6, 5000: 33.8, 20000: 442.0}
QUARTZ_PEAK_MB = {20000: 1700.0}
MARK = "BENCHJSON "
_BUILT = re.compile(r"(\d+) notes, (\d+) pages written, (\d+) unchanged, (\d+) texts embedded")


# --- memory ----------------------------------------------------------------------------------------


def _status_kb(field: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Wall time, CPU time and the RSS high-water mark of each stage in this process."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.per_stage_peak = _reset_peak()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        _reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            peak = _status_kb("VmHWM") / 1024 if self.per_stage_peak else _maxrss_mb()
            self.rows[name] = {
                "s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
                "peak_mb": peak,
                "rss_mb": _status_kb("VmRSS") / 1024,
            }


# --- the embedders ---------------------------------------------------------------------------------


class FakeFactory:
    """A factory with ``model_id`` so the pipeline keys the cache by the fake id, never the real one."""

    model_id = FAKE_ID

    def __init__(self) -> None:
        self.load_s = 0.0
        self.embedder: Any = None

    def __call__(self) -> Any:
        from notegraph.embed import FakeEmbedder

        self.embedder = FakeEmbedder(FAKE_DIM)
        return self.embedder


class RealFactory:
    """The pipeline's own factory for the configured model, timing the model load and keeping it."""

    def __init__(self, settings: Any) -> None:
        from notegraph.embed import model_id_for
        from notegraph.pipeline import embedder_factory_for

        self.model_id = model_id_for(settings.model, settings.backend)
        self._factory = embedder_factory_for(settings)
        self.load_s = 0.0
        self.embedder: Any = None

    def __call__(self) -> Any:
        if self.embedder is None:
            start = time.perf_counter()
            self.embedder = self._factory()
            self.load_s = time.perf_counter() - start
        return self.embedder


def _patch_fake_cli() -> None:
    """Make the CLI's own code path embed with the fake model, cached under the fake id."""
    import notegraph.embed as embed_pkg
    import notegraph.embed.isolated as isolated
    from notegraph.embed import FakeEmbedder

    embed_pkg.model_id_for = lambda name=None, backend="torch": FAKE_ID  # type: ignore[assignment]
    embed_pkg.load_embedder = lambda *a, **k: FakeEmbedder(FAKE_DIM)  # type: ignore[assignment]
    isolated.IsolatedEmbedder = lambda *a, **k: FakeEmbedder(FAKE_DIM)  # type: ignore[assignment,misc]


# --- child: the stages -----------------------------------------------------------------------------


def _instrument_render(totals: dict[str, float]) -> None:
    """Split render_site's time into template rendering and reuse of unchanged pages (private API:
    skipped quietly if the writer changes shape)."""
    try:
        from notegraph.render import site as site_mod
    except ImportError:
        return
    writer = getattr(site_mod, "_Writer", None)
    if writer is None or not hasattr(writer, "emit") or not hasattr(writer, "_reuse"):
        return
    emit, reuse, keep = writer.emit, writer._reuse, getattr(writer, "keep", None)

    def timed_emit(self: Any, path: str, context: Any, render: Callable[[], Any], *args: Any) -> None:
        def timed_render() -> Any:
            start = time.perf_counter()
            try:
                return render()
            finally:
                totals["templates_s"] += time.perf_counter() - start

        emit(self, path, context, timed_render, *args)

    def timed(fn: Callable[..., Any]) -> Callable[..., bool]:
        def run(self: Any, *args: Any) -> bool:
            start = time.perf_counter()
            try:
                return bool(fn(self, *args))
            finally:
                totals["reuse_s"] += time.perf_counter() - start

        return run

    writer.emit = timed_emit
    writer._reuse = timed(reuse)
    if keep is not None:  # pages kept by their inputs key count as reuse
        writer.keep = timed(keep)


def child_stages(args: argparse.Namespace) -> dict[str, Any]:
    """One real ``pipeline.build``, each of its stages timed through the build's own timer hook."""
    stages = Stages()
    with stages.stage("import"):
        from notegraph.config import load_settings
        from notegraph.pipeline import build

    notes_dir, out = Path(args.notes), Path(args.site)
    settings = load_settings(notes_dir, out=out, quiet=True)
    factory: Any = FakeFactory() if args.fake else RealFactory(settings)
    render_split = {"templates_s": 0.0, "reuse_s": 0.0}
    _instrument_render(render_split)
    result: dict[str, Any] = {"embedder": FAKE_ID if args.fake else factory.model_id}
    report = build(settings, factory, timer=stages.stage)
    result.update(
        stages=stages.rows,
        per_stage_peak=stages.per_stage_peak,
        peak_mb=_maxrss_mb(),
        workers_peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        notes=report.notes,
        links=report.links,
        texts=report.texts,
        embedded=report.embedded,
        pages_written=report.pages_written,
        pages_reused=report.pages_reused,
        facts_computed=getattr(report, "facts_computed", None),
        model_load_s=factory.load_s,
        render_split=render_split,
    )
    pid = getattr(factory.embedder, "pid", None) if not args.fake else None  # the model runs in a child process
    result["model_process_peak_mb"] = _status_kb("VmHWM", pid) / 1024 if pid is not None else None
    if args.raw and report.embedded and not args.fake:
        result["raw"] = _raw_throughput(settings)
    if args.related:
        result["related"] = _related_timing(settings, factory, args.fake)
    return result


def _raw_throughput(settings: Any) -> dict[str, float]:
    """SentenceTransformer.encode alone on the texts the embed stage encoded, same batch size, with the
    model loaded here (the build ran it in its own child process)."""
    from notegraph.embed.st import load_embedder
    from notegraph.embed.text import note_chunks
    from notegraph.pipeline import load

    notes = load(settings).notes
    texts = list(dict.fromkeys(chunk for note_id in sorted(notes) for chunk in note_chunks(notes[note_id])))
    embedder = load_embedder(settings.model, device=settings.device)
    start = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return {"texts": len(texts), "s": time.perf_counter() - start, "batch_size": embedder.batch_size}


def _related_timing(settings: Any, factory: Any, fake: bool) -> dict[str, float]:
    """`notegraph related` on a warm cache, model already loaded: by note title and by free text."""
    from notegraph.pipeline import load, related

    collection = load(settings)
    if not fake:
        factory()  # load once, outside the timing: the target is "after model load"
    title = collection.notes[sorted(collection.notes)[len(collection.notes) // 2]].title
    out: dict[str, float] = {"model_load_s": factory.load_s}
    for label, query in (("by_title_s", title), ("by_text_s", "how do partners repair misunderstandings in dialogue")):
        start = time.perf_counter()
        related(settings, query, 10, None, factory)
        out[label] = time.perf_counter() - start
    return out


# --- parent ----------------------------------------------------------------------------------------


def _run_child(argv: list[str], env: dict[str, str]) -> tuple[str, float, float, int]:
    """Run a child; returns (stdout, wall seconds, peak RSS MB of the child, return code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    # communicate() has reaped the child; RUSAGE_CHILDREN's maxrss is the largest child so far, so
    # the CLI's own peak is taken from its reported figure below when it is smaller.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode:
        sys.stderr.write(stderr[-3000:])
    return stdout + stderr, wall, peak, proc.returncode


def _wait4_child(argv: list[str], env: dict[str, str]) -> tuple[str, float, float, int]:
    """Like _run_child, but the peak RSS is this child's own (os.wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return output, wall, usage.ru_maxrss / 1024, proc.returncode


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.workdir).resolve()
        self.results: list[dict[str, Any]] = []

    def env(self, n: int, fake: bool) -> dict[str, str]:
        env = dict(os.environ)
        # The model-digest stamp lives here so "cold" can really start empty.
        env["NOTEGRAPH_CACHE_DIR"] = str(self.paths(n, fake)[2])
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def paths(self, n: int, fake: bool) -> tuple[Path, Path, Path]:
        base = self.work / f"{'fake' if fake else 'model'}-{n}{'-plain' if self.args.plain else ''}"
        return base / "notes", base / "site", base / "user-cache"

    def prepare(self, n: int, fake: bool) -> None:
        notes, _site, _cache = self.paths(n, fake)
        stamp = notes.parent / "generated.json"
        want = {"n": n, "seed": self.args.seed, "generator": _generator_digest(), "plain": self.args.plain}
        if stamp.exists() and json.loads(stamp.read_text()) == want and notes.is_dir():
            return
        start = time.perf_counter()
        plain = ["--plain"] if self.args.plain else []
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(notes), "--seed", str(self.args.seed), *plain], check=True)
        print(f"  generated {n} notes in {time.perf_counter() - start:.1f}s", flush=True)
        stamp.write_text(json.dumps(want))

    def reset(self, scenario: str, n: int, fake: bool) -> None:
        notes, site, cache = self.paths(n, fake)
        if scenario == "cold":
            shutil.rmtree(notes / ".notegraph", ignore_errors=True)
            shutil.rmtree(site, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
        elif scenario == "rerender":
            shutil.rmtree(site, ignore_errors=True)
            # everything but the embeddings is computed again: parsing, and every note's facts
            for name in ("parse.sqlite", "facts.sqlite", "terms.sqlite", "terms.npz", "rank.npz", "near.npz"):
                (notes / ".notegraph" / name).unlink(missing_ok=True)

    def edited_note(self, n: int, fake: bool) -> Path:
        notes = self.paths(n, fake)[0]
        files = sorted(p for p in notes.rglob("*.md") if ".notegraph" not in p.parts)
        return files[len(files) // 2]

    def stages_child(self, scenario: str, n: int, fake: bool, raw: bool, related: bool) -> dict[str, Any]:
        notes, site, _cache = self.paths(n, fake)
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--notes", str(notes), "--site", str(site)]
        argv += ["--fake-embedder"] * fake + ["--raw"] * raw + ["--child-related"] * related
        output, wall, _peak, rc = _run_child(argv, self.env(n, fake))
        if rc:
            raise SystemExit(f"stage child failed for {scenario} at {n}")
        line = next(line for line in output.splitlines() if line.startswith(MARK))
        data: dict[str, Any] = json.loads(line[len(MARK):])
        data["child_wall_s"] = wall
        return data

    def cli_child(self, n: int, fake: bool) -> dict[str, Any]:
        notes, site, _cache = self.paths(n, fake)
        if fake:
            argv = [sys.executable, str(Path(__file__).resolve()), "--child-cli-fake", str(notes), "--out", str(site), "-q"]
        else:
            exe = shutil.which("notegraph")
            argv = [exe] if exe else [sys.executable, "-m", "notegraph"]
            argv += ["build", str(notes), "--out", str(site), "-q"]
        output, wall, peak, rc = _wait4_child(argv, self.env(n, fake))
        if rc:
            # Keep going: one failed CLI run (a half-finished change elsewhere) must not lose the rest.
            tail = output.strip().splitlines()[-1:] or [""]
            return {"s": wall, "peak_mb": peak, "failed": f"exit {rc}: {tail[0][:200]}"}
        match = _BUILT.search(output)
        counts = dict(zip(("notes", "pages_written", "pages_reused", "embedded"), map(int, match.groups()), strict=True)) if match else {}
        return {"s": wall, "peak_mb": peak, **counts}

    def run_size(self, n: int) -> None:
        a = self.args
        fake = a.fake_embedder or (a.fake_from is not None and n >= a.fake_from)
        embedder = f"FakeEmbedder dim {FAKE_DIM} (hashing, no model)" if fake else "all-MiniLM-L6-v2 (sentence-transformers, torch CPU)"
        print(f"\n=== {n} notes; embedder: {embedder}", flush=True)
        self.prepare(n, fake)
        notes, site, _cache = self.paths(n, fake)
        scenarios = [s for s in SCENARIOS if s in a.scenarios]
        if scenarios and scenarios[0] != "cold" and not site.is_dir():
            print("  warm-up build (not measured)", flush=True)
            self.stages_child("warmup", n, fake, raw=False, related=False)
        for scenario in scenarios:
            if scenario == "cold" and not fake and n > a.cold_max:
                print(f"  cold: skipped with the real model above {a.cold_max} notes (--cold-max)", flush=True)
                continue
            row: dict[str, Any] = {"n": n, "scenario": scenario, "embedder": FAKE_ID if fake else "all-MiniLM-L6-v2"}
            if scenario == "live":
                row["live"] = self.live_child(n, fake)
                self.report_live(row)
                self.results.append(row)
                continue
            edited = self.edited_note(n, fake) if scenario == "edit" else None
            original = edited.read_bytes() if edited else b""
            try:
                self.reset(scenario, n, fake)
                if edited:
                    edited.write_bytes(original + b"\nAn edited sentence about repair and grounding, first run.\n")
                row["stages"] = self.stages_child(
                    scenario, n, fake, raw=scenario == "cold" and not fake and n <= a.raw_max, related=scenario == "nochange" and a.related
                )
                self.report_stages(row)
                run_cli = not a.no_cli and scenario in a.cli_scenarios and not (scenario == "cold" and not fake and n > a.cli_cold_max)
                if run_cli:
                    self.reset(scenario, n, fake)
                    if edited:
                        edited.write_bytes(original + b"\nAn edited sentence about turn-taking and repair, second run.\n")
                    row["cli"] = self.cli_child(n, fake)
                    self.report_cli(row)
                elif scenario == "cold" and not a.no_cli and scenario in a.cli_scenarios:
                    print(f"    CLI cold: skipped above {a.cli_cold_max} notes with the real model (--cli-cold-max)", flush=True)
            finally:
                if edited:
                    edited.write_bytes(original)
            self.results.append(row)
            if self.args.json:  # written after every scenario so an interrupted run keeps its figures
                self.args.json.write_text(json.dumps(self.results, indent=1) + "\n", encoding="utf-8")

    def live_child(self, n: int, fake: bool) -> dict[str, Any]:
        notes, site, _cache = self.paths(n, fake)
        edited = self.edited_note(n, fake)
        argv = [sys.executable, str(Path(__file__).resolve()), "--child-live", str(notes), str(site), str(edited), *(["--fake"] * fake)]
        output, _wall, _peak, rc = _run_child(argv, self.env(n, fake))
        if rc:
            raise SystemExit(f"live child failed at {n}: {output[-2000:]}")
        line = next(line for line in output.splitlines() if line.startswith(MARK))
        data: dict[str, Any] = json.loads(line[len(MARK):])
        return data

    def report_live(self, row: dict[str, Any]) -> None:
        d = row["live"]
        edits = ", ".join(f"{e['s']:.2f}s ({e['pages']})" for e in d["edits"])
        median = sorted(e["s"] for e in d["edits"])[len(d["edits"]) // 2]
        print(f"  live: `serve`'s rebuild in a process that has built before ({d['embedder']}; warm-up edit {d['warmup_s']:.2f}s)", flush=True)
        print(f"    one edit: {edits}; median {median:.2f}s (target <= 1.5 s); revert {d['revert']['s']:.2f}s ({d['revert']['pages']})", flush=True)

    def report_stages(self, row: dict[str, Any]) -> None:
        d = row["stages"]
        print(f"  {row['scenario']}: stage functions, fresh process ({d['embedder']})", flush=True)
        how = "VmHWM reset per stage" if d["per_stage_peak"] else "ru_maxrss so far (cumulative)"
        print(f"    {'stage':<8} {'seconds':>8} {'cpu s':>7} {'peak MB':>8}   ({how})")
        total = 0.0
        for name in STAGES:
            s = d["stages"].get(name)
            if s is None:
                continue
            total += s["s"]
            extra = ""
            if name == "embed":
                extra = f"  {d['embedded']} of {d['texts']} texts embedded"
                if d["model_load_s"]:
                    extra += f", model load {d['model_load_s']:.2f}s"
            if name == "graph" and d.get("facts_computed") is not None:
                extra = f"  facts of {d['facts_computed']} of {d['notes']} notes computed (the rest kept)"
            if name == "render":
                split = d["render_split"]
                extra = f"  templates {split['templates_s']:.2f}s, reuse {split['reuse_s']:.2f}s; {d['pages_written']} pages written, {d['pages_reused']} reused"
            print(f"    {name:<8} {s['s']:>8.2f} {s['cpu_s']:>7.2f} {s['peak_mb']:>8.0f}{extra}")
        if "render_error" in d:
            print(f"    render FAILED (code being edited elsewhere): {d['render_error']}")
        print(f"    {'total':<8} {total:>8.2f}          process peak {d['peak_mb']:.0f} MB; {d['notes']} notes, {d['links']} links")
        if d.get("model_process_peak_mb"):
            print(f"    model process (MiniLM in its own child, ended before the graph stage): peak {d['model_process_peak_mb']:.0f} MB")
        raw = d.get("raw")
        if raw:
            embed_s = d["stages"]["embed"]["s"]
            encode_s = embed_s - d["model_load_s"]
            print(
                f"    raw SentenceTransformer.encode, same {raw['texts']} texts, batch {raw['batch_size']}: {raw['s']:.1f}s "
                f"= {raw['texts'] / raw['s']:.1f} texts/s; embed stage {d['texts'] / embed_s:.1f} texts/s incl. model load "
                f"(ratio {raw['s'] / embed_s:.2f}x), {d['texts'] / encode_s:.1f} texts/s without (ratio {raw['s'] / encode_s:.2f}x; target >= 0.9x)"
            )
        rel = d.get("related")
        if rel:
            print(
                f"    related query on the warm cache, model loaded ({rel['model_load_s']:.2f}s): "
                f"by note title {rel['by_title_s']:.2f}s, by free text {rel['by_text_s']:.2f}s (target <= 1 s)"
            )

    def report_cli(self, row: dict[str, Any]) -> None:
        c, n = row["cli"], row["n"]
        if "failed" in c:
            print(f"    CLI `notegraph build` FAILED after {c['s']:.1f}s ({c['failed']})", flush=True)
            return
        quartz = QUARTZ_S.get(n)
        vs = f"; Quartz {quartz:.1f}s is {quartz / c['s']:.1f}x this" if quartz else ""
        mem = f"; Quartz peak {QUARTZ_PEAK_MB[n]:.0f} MB is {QUARTZ_PEAK_MB[n] / c['peak_mb']:.1f}x this" if n in QUARTZ_PEAK_MB else ""
        counts = f"{c.get('embedded', '?')} texts embedded, {c.get('pages_written', '?')} pages written, {c.get('pages_reused', '?')} reused"
        print(f"    CLI `notegraph build`: {c['s']:.2f}s, peak RSS {c['peak_mb']:.0f} MB ({counts}){vs}{mem}", flush=True)


def _generator_digest() -> str:
    import hashlib

    return hashlib.sha256((HERE / "generate.py").read_bytes()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--fake-embedder", action="store_true", help="use the FakeEmbedder at every size")
    parser.add_argument("--fake-from", type=int, default=None, help="use the FakeEmbedder at sizes >= this")
    parser.add_argument("--cold-max", type=int, default=5000, help="largest size for a cold build with the real model")
    parser.add_argument("--cli-cold-max", type=int, default=1000, help="largest size for a cold CLI build with the real model")
    parser.add_argument("--no-cli", action="store_true", help="skip the whole-CLI headline runs")
    parser.add_argument("--cli-scenarios", default=",".join(SCENARIOS), help="scenarios that also get a whole-CLI run")
    parser.add_argument("--raw-max", type=int, default=1000, help="largest size for the raw-model comparison (it re-encodes every text)")
    parser.add_argument("--no-related", dest="related", action="store_false", help="skip the related-query timing")
    parser.add_argument("--workdir", default=os.environ.get("NOTEGRAPH_BENCH_DIR", "/tmp/notegraph-bench"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="collections of prose and links only (generate.py --plain)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    # child modes
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--notes", help=argparse.SUPPRESS)
    parser.add_argument("--site", help=argparse.SUPPRESS)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-related", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        args.fake = args.fake_embedder
        args.related = args.child_related
        print(MARK + json.dumps(child_stages(args)), flush=True)
        return 0
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.cli_scenarios = [s.strip() for s in args.cli_scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    print(f"notegraph benchmark: sizes {args.sizes}, scenarios {','.join(args.scenarios)}, {os.cpu_count()} CPUs, workdir {args.workdir}")
    _byte_compile()
    bench = Bench(args)
    for n in args.sizes:
        bench.run_size(n)
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _byte_compile() -> None:
    """Compile notegraph's modules before measuring: an installed copy runs from byte code (pip compiles
    on install, Python caches each module on its first import), but where PYTHONDONTWRITEBYTECODE is
    set (as in some sandboxes) every child process would compile them again, 0.05-0.1 s of each CLI
    run that no user pays."""
    import compileall

    import notegraph

    compileall.compile_dir(str(Path(notegraph.__file__).parent), quiet=1)


def _live_main() -> int:
    """``run.py --child-live NOTES SITE EDITED [--fake]``: serve's rebuilds (notegraph.serve.LiveSite,
    without its server and watcher, each in a thread as the watcher runs it) after edits of one note,
    each timed; the note is restored."""
    notes, site, edited = (Path(a) for a in sys.argv[2:5])
    fake = "--fake" in sys.argv[5:]
    if fake:
        _patch_fake_cli()
    from notegraph.config import load_settings
    from notegraph.serve import LiveSite

    said: list[str] = []
    live = LiveSite(load_settings(notes, out=site, quiet=True), echo=lambda message, _err: said.append(message))
    original = edited.read_bytes()

    def in_thread() -> None:  # as serve's watcher thread does: no forked workers there (parallel.may_fork)
        watcher = threading.Thread(target=live.rebuild)
        watcher.start()
        watcher.join()

    def rebuild(text: bytes) -> dict[str, Any]:
        edited.write_bytes(original + text)
        start = time.perf_counter()
        in_thread()
        took = time.perf_counter() - start
        built = [m for m in said if m.startswith("built ")]
        return {"s": took, "pages": built[-1].split(": ", 1)[-1] if built else said[-1:]}

    try:
        live.rebuild()  # the published site, as the first build of `serve` finds it (in the main thread)
        warmup = rebuild(b"\nAn edited sentence, warm-up.\n")  # loads the model (if a text is new) and fills Warm
        edits = [rebuild(f"\nAn edited sentence about repair and grounding, live run {i}.\n".encode()) for i in range(3)]
        revert = rebuild(b"")
    finally:
        edited.write_bytes(original)
        live.stop()
    embedder = FAKE_ID if fake else "all-MiniLM-L6-v2"
    print(MARK + json.dumps({"embedder": embedder, "warmup_s": warmup["s"], "edits": edits, "revert": revert}), flush=True)
    return 0


def _cli_fake_main() -> int:
    """``run.py --child-cli-fake NOTES --out SITE -q``: the real CLI, fake model."""
    _patch_fake_cli()
    from notegraph import cli

    sys.argv = ["notegraph", "build", *sys.argv[2:]]
    getattr(cli, "entry", cli.main)()  # the console script's own entry point (it leaves the process itself)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-cli-fake":
        sys.exit(_cli_fake_main())
    if len(sys.argv) > 1 and sys.argv[1] == "--child-live":
        sys.exit(_live_main())
    sys.exit(main())
