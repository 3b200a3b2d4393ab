"""Real English sentences for the memory benchmarks.

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

Reading them takes 3–22 minutes, once: the list is kept in ~/.cache/os1d-bench until what it depends on (the
packages installed, the rules of this file) changes. bench/corpus.py embeds them.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import html
import json
import re
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

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
    is kept in ~/.cache/os1d-bench until the packages installed (Debian's or Python's) or this file change,
    and serves any shorter list too (its first n)."""
    stamp = _installed()
    def serves(path: Path) -> int:  # how many sentences a kept list can give (all: as many as there are)
        size = path.stem.split("-", 1)[1]
        return sys.maxsize if size == "all" else int(size)

    for path in sorted((p for p in CACHE.glob("sentences-*.json") if serves(p) >= n), key=serves):
        saved = json.loads(path.read_text())
        if saved["stamp"] == stamp:
            return saved["sentences"][:n]
    seen: dict[str, None] = {}
    for paragraph in _sources():
        for s in sentences(paragraph):
            seen.setdefault(s)
        if len(seen) >= n:
            break
    found = list(seen)[:n]
    path = CACHE / f"sentences-{n if len(found) == n else 'all'}.json"  # all: every sentence there is
    CACHE.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps({"stamp": stamp, "sentences": found}))
    path.with_suffix(".tmp").replace(path)
    return found


def _installed() -> str:
    """What the sentences depend on: Debian's package database, Python's installed packages, the downloaded
    API references and the rules of this file."""
    dpkg = Path("/var/lib/dpkg/status")
    parts = [Path(__file__).read_text(), f"{dpkg.stat().st_mtime_ns}" if dpkg.exists() else "",
             *sorted(p.name for p in Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info")),
             *sorted(p.name for p in (CACHE / "text").glob("*"))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
