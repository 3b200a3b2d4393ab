"""Real English sentences for the memory benchmarks, and their MiniLM embeddings, cached between runs.

The sentences come from text already on a Debian machine: the docstrings of Python's standard library and
installed packages, the manual pages, and (when their Debian packages are installed) the Linux kernel's,
Python's, Java's, PostgreSQL's and Node's documentation, the Debian Administrator's Handbook, the GNU
Collaborative International Dictionary of English, FOLDOC, the Jargon File, WordNet's glosses, the fortunes,
the docstrings of Debian's SymPy, scikit-learn and Azure SDK, and the API references of AWS and Google. For a
million of them:

    sudo apt-get install --no-install-recommends linux-doc-6.1 python3.11-doc debian-handbook dict-gcide \
        dict-foldoc dict-jargon wordnet-base fortunes openjdk-17-doc postgresql-doc-15 nodejs-doc python3-sympy \
        python3-sklearn python3-azure python3-botocore
    pip download --no-deps -d ~/.cache/os1d-bench/text google-api-python-client  # Google's API reference

Embedding a million sentences takes half an hour to over an hour on 2 cores (72 minutes on one machine, 34 on
an AMD EPYC), once: each sentence's vector is kept in ~/.cache/os1d-bench, saved as it goes (an interrupted run
resumes). Reading the sentences takes 3–12 minutes more, once too: the list is kept beside them.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import html
import json
import re
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "os1d-bench"
SENTENCE = re.compile(r"[A-Z][\w\s,;:'()\-\"/%&+]+[.!?]")
TROFF = re.compile(r"\\f(\[[^\]]*\]|\(..|.)|\\\*(\[[^\]]*\]|\(..|.)|\\\(..|\\\[[^\]]*\]|\\[&|^%:c]|\\s[-+]?\d")
TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


def sentences(paragraph: str) -> Iterator[str]:
    """Plain English sentences of 5–40 words: a capital first, a full stop last, no code or markup between."""
    for s in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
        if 5 <= len(s.split()) <= 40 and s.isascii() and SENTENCE.fullmatch(s):
            yield s


def _read(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix in (".gz", ".dz"):  # dictzip is gzip
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace")


def _docstrings(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "tests" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                yield ast.get_docstring(node) or ""


def _man_pages() -> Iterator[str]:
    for path in sorted(Path("/usr/share/man").glob("man[1-8]/*.gz")):
        paragraph: list[str] = []
        for line in _read(path).splitlines():
            if line.startswith((".", "'")):  # a request ends the paragraph
                yield " ".join(paragraph)
                paragraph = []
            else:
                paragraph.append(TROFF.sub("", line).replace("\\-", "-"))
        yield " ".join(paragraph)


def _documents(folder: str, pattern: str) -> Iterator[str]:
    """Paragraphs (blank-line separated, tags removed) of the files matching pattern under folder."""
    for path in sorted(Path(folder).glob(pattern)):
        try:
            text = _read(path)
        except OSError:
            continue
        if ".htm" in path.name:
            text = html.unescape(TAG.sub("\n\n", text))
        yield from re.split(r"\n\s*\n", text)


def _wordnet() -> Iterator[str]:
    """WordNet's glosses as sentences: the definition with its first letter raised, and its quoted examples."""
    for path in sorted(Path("/usr/share/wordnet").glob("data.*")):
        for line in _read(path).splitlines():
            if "|" in line and not line.startswith(" "):
                for part in line.split("|", 1)[1].split(";"):
                    part = part.strip().strip('"').strip()
                    if part:
                        yield part[0].upper() + part[1:] + ("" if part.endswith((".", "!", "?")) else ".")


def _api_docs(texts: Iterator[str], key: str) -> Iterator[str]:
    """The paragraphs of every `key` string (HTML or plain text) in JSON API descriptions."""
    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == key and isinstance(value, str):
                    yield from re.split(r"\n\s*\n", html.unescape(TAG.sub("\n\n", value)))
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for text in texts:
        yield from walk(json.loads(text))


def _aws() -> Iterator[str]:
    """AWS's API reference: the service descriptions that botocore ships."""
    paths = sorted(Path("/usr/lib/python3/dist-packages/botocore/data").glob("*/*/service-2.json*"))
    yield from _api_docs((_read(p) for p in paths), "documentation")


def _google() -> Iterator[str]:
    """Google's API reference: the discovery documents in a downloaded google-api-python-client wheel."""
    for wheel in sorted((CACHE / "text").glob("google_api_python_client-*.whl")):
        with zipfile.ZipFile(wheel) as z:
            names = sorted(n for n in z.namelist() if "/discovery_cache/documents/" in n and n.endswith(".json"))
            yield from _api_docs((z.read(n).decode() for n in names), "description")


def _sources() -> Iterator[str]:
    yield from _docstrings(Path(sysconfig.get_paths()["stdlib"]))
    yield from _docstrings(Path(sysconfig.get_paths()["purelib"]))
    yield from _man_pages()
    yield from _documents("/usr/share/doc/linux-doc-6.1", "**/*.htm*")
    yield from _documents("/usr/share/doc/linux-doc-6.1", "**/*.rst*")
    yield from _documents("/usr/share/doc/python3.11", "html/**/*.htm*")
    yield from _documents("/usr/share/doc/debian-handbook", "html/en-US/**/*.htm*")
    yield from _documents("/usr/share/perl", "**/pod/*.pod")
    yield from _documents("/usr/share/dictd", "*.dict*")
    yield from _wordnet()
    yield from _documents("/usr/share/games/fortunes", "*")
    yield from _documents("/usr/share/doc/openjdk-17-jre-headless/api", "**/*.htm*")
    yield from _documents("/usr/share/doc/postgresql-doc-15/html", "*.htm*")
    yield from _documents("/usr/share/doc/nodejs/api", "*.htm*")
    yield from _docstrings(Path("/usr/lib/python3/dist-packages"))
    yield from _aws()
    yield from _google()


def real_sentences(n: int) -> list[str]:
    """Up to n distinct sentences, in a fixed order for a given machine. Reading them takes minutes; the list
    is kept in ~/.cache/os1d-bench until the packages installed (Debian's or Python's) or this file change."""
    kept, stamp = CACHE / f"sentences-{n}.json", _installed()
    if kept.exists():
        saved = json.loads(kept.read_text())
        if saved["stamp"] == stamp:
            return saved["sentences"]
    seen: dict[str, None] = {}
    for paragraph in _sources():
        for s in sentences(paragraph):
            seen.setdefault(s)
        if len(seen) >= n:
            break
    found = list(seen)[:n]
    CACHE.mkdir(parents=True, exist_ok=True)
    kept.with_suffix(".tmp").write_text(json.dumps({"stamp": stamp, "sentences": found}))
    kept.with_suffix(".tmp").replace(kept)
    return found


def _installed() -> str:
    """What the sentences depend on: Debian's package database, Python's installed packages, the downloaded
    API references and the rules of this file."""
    dpkg = Path("/var/lib/dpkg/status")
    parts = [Path(__file__).read_text(), f"{dpkg.stat().st_mtime_ns}" if dpkg.exists() else "",
             *sorted(p.name for p in Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info")),
             *sorted(p.name for p in (CACHE / "text").glob("*"))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def embeddings(texts: list[str], folder: Path) -> np.ndarray:
    """MiniLM vectors of texts (os1d's embedder, 2 threads, similar lengths batched together). Every sentence
    embedded is kept in ~/.cache/os1d-bench (its text beside its vector), saved every CHECKPOINT sentences: an
    interrupted run goes on where it stopped, and a machine whose documentation differs a little reuses all
    the sentences it shares."""
    known = _known()
    missing = sorted({t for t in texts if t not in known}, key=len)
    if missing:
        from os1d.memory.embed import MiniLMEmbedder

        embedder = MiniLMEmbedder(folder, threads=2)
        print(f"{len(texts) - len(missing):,} of {len(texts):,} sentences embedded before; embedding the rest",
              flush=True)
        t0, step = time.perf_counter(), 256
        for first in range(0, len(missing), CHECKPOINT):
            part = missing[first:first + CHECKPOINT]
            vectors = np.concatenate([embedder.embed(part[i:i + step]) for i in range(0, len(part), step)])
            known.update(zip(part, vectors))
            _keep(known)
            print(f"embedded {first + len(part):,} of {len(missing):,} in {time.perf_counter() - t0:.0f} s",
                  flush=True)
    return np.stack([known[t] for t in texts]).astype(np.float32)


CHECKPOINT = 25_000
VECTORS, TEXTS = CACHE / "minilm-vectors.npy", CACHE / "minilm-texts.json"


def _known() -> dict[str, np.ndarray]:
    """Every sentence embedded so far → its vector."""
    if not (VECTORS.exists() and TEXTS.exists()):
        return {}
    vectors, texts = np.load(VECTORS), json.loads(TEXTS.read_text())
    return dict(zip(texts, vectors))  # (the sentences only grow at the end: a run killed between the two
    # renames leaves one file longer, and the shorter one's sentences are still right)


def _keep(known: dict[str, np.ndarray]) -> None:
    """Save the sentences and their vectors (each file written aside, then renamed)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(VECTORS.with_suffix(".tmp.npy"), np.stack(list(known.values())))
    TEXTS.with_suffix(".tmp").write_text(json.dumps(list(known)))
    TEXTS.with_suffix(".tmp").replace(TEXTS)
    VECTORS.with_suffix(".tmp.npy").replace(VECTORS)


def grow(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors: the real ones, then (only if there are too few) normalised mixtures of two real ones."""
    if n <= len(real):
        return real[:n]
    a, b = rng.integers(0, len(real), (2, n - len(real)))
    w = rng.uniform(0.3, 0.7, (n - len(real), 1)).astype(np.float32)
    mixed = w * real[a] + (1 - w) * real[b]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.concatenate([real, mixed.astype(np.float32)])


def dataset(size: int, queries: int, folder: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Query texts and vectors, then `size` memory texts and vectors, all real where enough sentences exist.

    The sentences are shuffled (fixed seed) before the queries are taken, so queries and memories come from
    the same sources, and a smaller set is a sample of the whole."""
    texts = real_sentences(size + queries)
    vectors = embeddings(texts, folder)
    order = np.random.default_rng(0).permutation(len(texts))
    texts, vectors = [texts[i] for i in order], vectors[order]
    base = grow(vectors[queries:], size, np.random.default_rng(1))
    return texts[:queries], vectors[:queries], texts[queries:], base


def real_note(real: int, size: int) -> str:
    """How real the memories of a benchmark are, for its header."""
    if real >= size:
        return (f"Every memory is a real sentence, embedded (MiniLM); {size:,} of them, from documentation and "
                "dictionaries (bench/corpus.py); the queries are 200 other real sentences.")
    return (f"{real:,} real sentences embedded (MiniLM); beyond that, memories are mixtures of two real embeddings "
            "(install the packages bench/corpus.py lists for a million real ones); the queries are 200 other "
            "real sentences.")
