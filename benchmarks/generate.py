"""Deterministic synthetic note collections for the benchmarks: same N and seed, same files.

    python benchmarks/generate.py N OUT_DIR [--seed 0]

Notes cluster by topic: each topic has its own pool of words, and a note draws most of its words
(Zipf-weighted) from its topic's pool, the rest from a shared pool, so embeddings, TF-IDF and Louvain
see real structure. Kinds follow a research collection (synthesis ~40%, paper ~35%, concept ~15%,
inquiry ~10% with ``sources:``), ~5 wikilinks per note mostly within the topic, ~5% long notes
(1,500+ words), notes in ``kind/topic`` folders. Pure stdlib + numpy; 20,000 notes take seconds.

What real vaults hold besides prose, from a second random stream (so the prose, titles and links are
the same with or without it; ``--plain`` leaves it out): callouts (~15% of notes), fenced code (~10%),
TeX math (~10%, inline and display), image embeds of ~24 shared PNGs (~8%) and mermaid diagrams (~2%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

N_TOPICS_MIN = 8
TOPIC_WORDS = 140
SHARED_WORDS = 900
LONG_SHARE = 0.05
KINDS = ("synthesis", "paper", "concept", "inquiry")
KIND_P = (0.40, 0.35, 0.15, 0.10)
FOLDERS = {"synthesis": "synthesis", "paper": "papers", "concept": "concepts", "inquiry": "inquiries"}

# Real words give the tokenizer realistic word pieces; syllable-built words extend the vocabulary
# to a few thousand without shipping a word list.
REAL_WORDS = """
model language dialogue grounding repair turn speaker listener meaning context intention evidence
training data scaling evaluation benchmark annotation corpus sentence token attention memory
learning reward preference feedback policy agent partner conversation question answer claim
argument theory account mechanism signal structure pattern behaviour error failure success
measure metric score sample study experiment result effect cause factor process system network
layer vector space distance cluster graph node edge link path community topic field method
analysis review survey proposal framework principle constraint assumption hypothesis prediction
observation interpretation explanation description comparison contrast alignment agreement
disagreement coordination cooperation negotiation commitment belief knowledge reasoning inference
perception attention action gesture prosody rhythm timing overlap pause silence backchannel
feedback uptake acknowledgement clarification correction revision planning generation retrieval
summary citation source archive record history culture society institution norm value ethics
policy risk safety harm bias fairness privacy trust reliability robustness calibration uncertainty
child infant adult learner teacher expert novice user designer researcher author reader writer
speech text audio video image vision sound word phrase clause discourse narrative genre register
style tone politeness face stance identity persona role character voice perspective viewpoint
""".split()

FUNCTION_WORDS = """
the the the of of of and and and to to a a in in is is that that for it as with on by this be are
was not or from at which but can have has their its they more than also these between when how
what only such other into both may might would could should because while where whether each
""".split()

ONSETS = ["b", "br", "c", "ch", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n",
          "p", "pl", "pr", "qu", "r", "s", "sc", "sh", "sl", "sp", "st", "t", "th", "tr", "v", "w", "z"]
NUCLEI = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y"]
CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "nt", "rk", "st", "x"]
SUFFIXES = ["", "", "", "", "", "", "tion", "ity", "ism", "ment", "al", "ic", "er", "ing"]
SURNAMES = """Abbott Baker Chen Dalton Evans Fischer Garcia Huang Ivanova Jensen Kumar Laurent Moreau Nakamura
Okafor Patel Quinn Rossi Schmidt Tanaka Uchida Varga Wang Xu Yilmaz Zhang""".split()
VENUES = ["ACL", "EMNLP", "NAACL", "NeurIPS", "ICML", "ICLR", "Cognitive Science", "Journal of Pragmatics",
          "Discourse Processes", "TACL", "CHI", "Language"]


def _pseudo_words(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        syllables = 1 + int(rng.random() < 0.3)
        word = "".join(
            ONSETS[rng.integers(len(ONSETS))] + NUCLEI[rng.integers(len(NUCLEI))] + CODAS[rng.integers(len(CODAS))]
            for _ in range(syllables)
        ) + SUFFIXES[rng.integers(len(SUFFIXES))]
        if 3 <= len(word) <= 12 and word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _zipf(size: int, s: float = 1.05) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** s
    return weights / weights.sum()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-")


class _Vocab:
    def __init__(self, rng: np.random.Generator, n_topics: int) -> None:
        taken = set(REAL_WORDS) | set(FUNCTION_WORDS)
        shared_real = list(dict.fromkeys(REAL_WORDS))
        rng.shuffle(shared_real)
        shared = shared_real[: len(shared_real) // 2] + _pseudo_words(rng, SHARED_WORDS, taken)
        rng.shuffle(shared)
        self.shared = np.array(shared)
        spare = shared_real[len(shared_real) // 2 :]
        self.topics: list[np.ndarray] = []
        self.names: list[list[str]] = []
        for t in range(n_topics):
            # A few real words per topic (shared across some topics) plus its own invented jargon.
            real = [spare[(t * 7 + i) % len(spare)] for i in range(20)]
            own = _pseudo_words(rng, TOPIC_WORDS - len(real), taken)
            self.names.append(own[:3])
            pool = own + real
            rng.shuffle(pool)
            self.topics.append(np.array(pool))
        self.function = np.array(FUNCTION_WORDS)
        self.p_shared = _zipf(len(self.shared), 0.9)
        self.p_topic = _zipf(TOPIC_WORDS, 0.9)
        self.p_function = np.full(len(self.function), 1.0 / len(self.function))


class _Generator:
    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.n_topics = max(N_TOPICS_MIN, int(round(np.sqrt(n) / 2.5)))
        self.vocab = _Vocab(self.rng, self.n_topics)
        self.topic_names = [
            " ".join(w.capitalize() for w in self.vocab.names[t]) + " Studies" for t in range(self.n_topics)
        ]

    def words(self, topic: int, count: int) -> list[str]:
        """``count`` body words: ~50% function words, ~33% topic jargon, ~17% shared vocabulary.

        The mix keeps word pieces per word near English prose (~1.3), so a 180-word chunk fits the
        model's 256-piece window as real notes do and embedding cost is realistic."""
        v, rng = self.vocab, self.rng
        source = rng.choice(3, size=count, p=(0.50, 0.33, 0.17))
        out = np.empty(count, dtype=object)
        for k, (pool, p) in enumerate(((v.function, v.p_function), (v.topics[topic], v.p_topic), (v.shared, v.p_shared))):
            mask = source == k
            out[mask] = rng.choice(pool, size=int(mask.sum()), p=p)
        return list(out)

    def title(self, topic: int, kind: str, taken: set[str]) -> str:
        rng = self.rng
        for _ in range(100):
            if kind == "concept":
                title = " ".join(self.words_only(topic, int(rng.integers(1, 3)))).capitalize()
            elif kind == "inquiry":
                title = f"How does {' '.join(self.words_only(topic, int(rng.integers(3, 6))))} shape {' '.join(self.words_only(topic, 2))}?"
            elif kind == "paper":
                title = f"{' '.join(self.words_only(topic, int(rng.integers(3, 7)))).capitalize()}: {' '.join(self.words_only(topic, 3))}"
            else:
                title = f"{' '.join(self.words_only(topic, int(rng.integers(4, 8)))).capitalize()} {rng.choice(['matters', 'fails', 'persists', 'emerges', 'explains'])}"
            if title.lower() not in taken:
                taken.add(title.lower())
                return title
        raise RuntimeError("could not find a unique title")

    def words_only(self, topic: int, count: int) -> list[str]:
        v = self.vocab
        pick_topic = self.rng.random(count) < 0.7
        return [
            str(self.rng.choice(v.topics[topic], p=v.p_topic) if t else self.rng.choice(v.shared, p=v.p_shared))
            for t in pick_topic
        ]

    def paragraphs(self, topic: int, n_words: int, links: list[str]) -> list[str]:
        """Sentences of 8-22 words in paragraphs of 3-6 sentences; links spread over the sentences."""
        rng = self.rng
        words = self.words(topic, n_words)
        sentences: list[str] = []
        pos = 0
        while pos < len(words):
            length = int(rng.integers(8, 23))
            chunk = words[pos : pos + length]
            pos += length
            sentence = " ".join(chunk)
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        slots = rng.choice(len(sentences), size=min(len(links), len(sentences)), replace=False) if sentences else []
        for slot, link in zip(sorted(slots), links, strict=False):
            sentences[slot] = sentences[slot][:-1] + f", as {link} argues."
        paragraphs: list[str] = []
        i = 0
        while i < len(sentences):
            size = int(rng.integers(3, 7))
            paragraphs.append(" ".join(sentences[i : i + size]))
            i += size
        return paragraphs


CALLOUTS = ("note", "info", "tip", "warning", "question", "example", "quote", "abstract")
FORMULAS = (
    r"\frac{\partial \mathcal{L}}{\partial \theta} = \sum_{i=1}^{n} \nabla_\theta \log p(y_i \mid x_i)",
    r"\operatorname{argmax}_{y} \; p(y \mid x)",
    r"\begin{aligned} a &= b + c \\ d &= \sqrt{e^2 + f^2} \end{aligned}",
    r"\mathbb{E}_{x \sim p}[f(x)] \le \epsilon",
    r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix}",
    r"P(A \mid B) = \frac{P(B \mid A)\,P(A)}{P(B)}",
)
CODE = (
    ("python", "def score(a, b):\n    \"\"\"Cosine of two vectors.\"\"\"\n    return a @ b / (norm(a) * norm(b))\n"),
    ("json", '{"model": "all-MiniLM-L6-v2", "k": 10, "threshold": 0.45}\n'),
    ("bash", "notegraph build notes --out site && notegraph check notes --strict\n"),
    ("sql", "SELECT id, title FROM notes WHERE kind = 'paper' ORDER BY date DESC;\n"),
)
N_IMAGES = 24


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _rich_blocks(rng: np.random.Generator, words: list[str]) -> list[str]:
    """The blocks a note holds besides prose, drawn from ``rng``; ``words`` give callouts their text."""
    blocks: list[str] = []
    if rng.random() < 0.15:
        kind = CALLOUTS[int(rng.integers(len(CALLOUTS)))]
        fold = ("", "+", "-")[int(rng.integers(3))]
        text = " ".join(words[:12]).capitalize() + "."
        blocks.append(f"> [!{kind}]{fold} {' '.join(words[12:15]).capitalize()}\n> {text}")
    if rng.random() < 0.10:
        lang, code = CODE[int(rng.integers(len(CODE)))]
        blocks.append(f"```{lang}\n{code}```")
    if rng.random() < 0.10:
        formula = FORMULAS[int(rng.integers(len(FORMULAS)))]
        blocks.append(f"$$\n{formula}\n$$" if rng.random() < 0.5 else f"So ${formula}$ holds here.")
    if rng.random() < 0.08:
        blocks.append(f"![[figure-{int(rng.integers(N_IMAGES)):02d}.png|{int(rng.integers(200, 600))}]]")
    if rng.random() < 0.02:
        blocks.append("```mermaid\ngraph LR\n  Claim --> Evidence\n  Evidence --> Conclusion\n```")
    return blocks


def generate(n: int, out: Path, seed: int = 0, rich: bool = True) -> list[Path]:
    """Write ``n`` notes under ``out`` (replacing its notes and state) and return their paths, sorted."""
    g = _Generator(n, seed)
    extras = np.random.default_rng(seed + 7919)  # the rich blocks' own stream: the prose stays the same
    rng = g.rng
    kinds = rng.choice(len(KINDS), size=n, p=KIND_P)
    # Topic sizes are uneven, like a real collection: a few large topics, many small ones.
    topics = rng.choice(g.n_topics, size=n, p=_zipf(g.n_topics, 0.6))
    taken: set[str] = set()
    titles = [g.title(int(topics[i]), KINDS[kinds[i]], taken) for i in range(n)]
    stems: list[str] = []
    seen_stems: set[str] = set()
    for i, title in enumerate(titles):
        stem = _slug(title) or f"note-{i}"
        if stem in seen_stems:
            stem = f"{stem}-{i}"
        seen_stems.add(stem)
        stems.append(stem)
    folders = [f"{FOLDERS[KINDS[kinds[i]]]}/{_slug(g.topic_names[topics[i]])}" for i in range(n)]
    by_topic: dict[int, np.ndarray] = {t: np.flatnonzero(topics == t) for t in range(g.n_topics)}
    start = dt.date(2019, 1, 1)

    if out.exists():
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / "notegraph.toml").write_text(
        f'title = "Synthetic collection ({n} notes, seed {seed})"\ntopics = [{", ".join(f"{t!r}".replace(chr(39), chr(34)) for t in g.topic_names)}]\n',
        encoding="utf-8",
    )
    written: list[Path] = []
    for i in range(n):
        kind = KINDS[kinds[i]]
        topic = int(topics[i])
        n_links = int(rng.poisson(5))
        same = by_topic[topic]
        targets: list[int] = []
        for _ in range(n_links):
            pool = same if (rng.random() < 0.8 and len(same) > 1) else np.arange(n)
            j = int(pool[rng.integers(len(pool))])
            if j != i and j not in targets:
                targets.append(j)
        links = []
        for j in targets:
            style = rng.random()
            if style < 0.5:
                links.append(f"[[{stems[j]}]]")
            elif style < 0.8:
                links.append(f"[[{titles[j]}]]")
            else:
                links.append(f"[[{stems[j]}|{titles[j].lower()[:40]}]]")
        long_note = rng.random() < LONG_SHARE
        n_words = int(rng.integers(1500, 2600)) if long_note else max(60, int(rng.normal(200, 45)))
        date = start + dt.timedelta(days=int(rng.integers(0, 2500)))
        extra_topic = int(rng.integers(g.n_topics))
        note_topics = [g.topic_names[topic]] + ([g.topic_names[extra_topic]] if rng.random() < 0.3 and extra_topic != topic else [])
        front = [
            "---",
            f'title: "{titles[i]}"',
            f"kind: {kind}",
            f"date: {date.isoformat()}",
            "topics:",
            *[f'  - "{t}"' for t in note_topics],
        ]
        body_links = links
        if kind == "inquiry":
            sources = targets[:3] if len(targets) >= 3 else targets + [int(same[rng.integers(len(same))]) for _ in range(3 - len(targets))]
            front.append("sources:")
            front += [f'  - "[[{stems[j]}]]"' for j in dict.fromkeys(sources) if j != i]
            body_links = links[3:]
        elif kind == "paper":
            authors = [str(rng.choice(SURNAMES)) + ", " + chr(65 + int(rng.integers(26))) + "." for _ in range(int(rng.integers(1, 5)))]
            front.append("authors:")
            front += [f'  - "{a}"' for a in authors]
            front.append(f"year: {int(rng.integers(1970, 2026))}")
            front.append(f'venue: "{rng.choice(VENUES)}"')
        elif kind == "synthesis":
            front.append(f'claim: "{" ".join(g.words_only(topic, 8)).capitalize()}"')
        front.append("---")
        paragraphs = g.paragraphs(topic, n_words, body_links)
        if long_note:
            # Long notes have headings, like a literature review.
            for k in range(2, len(paragraphs), 4):
                paragraphs[k] = f"## {' '.join(g.words_only(topic, 3)).capitalize()}\n\n{paragraphs[k]}"
        if rich:
            for block in _rich_blocks(extras, g.words_only(topic, 15)):
                paragraphs.insert(int(extras.integers(1, len(paragraphs) + 1)), block)
        path = out / folders[i] / f"{stems[i]}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(front) + "\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        written.append(path)
    if rich:
        images = out / "attachments"
        images.mkdir(exist_ok=True)
        for k in range(N_IMAGES):
            colour = (int(extras.integers(256)), int(extras.integers(256)), int(extras.integers(256)))
            (images / f"figure-{k:02d}.png").write_bytes(_png(64, 40, colour))
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of notes")
    parser.add_argument("out", type=Path, help="output folder (its contents are replaced)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="prose and links only: no callouts, code, math, images or diagrams")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("N must be at least 2")
    paths = generate(args.n, args.out, args.seed, rich=not args.plain)
    words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
    print(f"wrote {len(paths)} notes ({words} words) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
