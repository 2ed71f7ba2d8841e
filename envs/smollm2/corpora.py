"""Real text found on the machine, by domain, split by document into distillation, training and held-out text.

Three domains, read from what any Python installation holds (no downloads):

- ``python``: the source files of the running interpreter's standard library
  (``sysconfig.get_paths()["stdlib"]``);
- ``licences``: licence files shipped with installed Python distributions
  (``LICENSE*``, ``COPYING*``, ``NOTICE*`` in ``importlib.metadata`` file
  lists) and Debian's ``/usr/share/doc/*/copyright`` files where they exist;
- ``docs``: the long descriptions (READMEs) of installed Python distributions
  (``importlib.metadata``).

A document (a file, a distribution's README) goes wholly to one part, by a
BLAKE2b hash of its domain and name (:func:`part_of`). Standard texts recur
across documents (the GPL in many copyright files, boilerplate in READMEs), so
a prompt is also dropped when more than half of its long lines (30
characters or more, whitespace-normalised) occur in an earlier part's
documents: distillation text for training prompts, distillation and
training text for held-out prompts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import sysconfig
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DOMAINS", "PARTS", "Chunk", "Document", "chunks", "licence_files", "package_docs", "part_of",
           "python_source", "split_prompts", "text_files"]

#: The parts a document can go to, in order: distillation text, training prompts, held-out prompts.
PARTS = ("distill", "train", "test")
_LICENCE = re.compile(r"^(licen[cs]e|copying|notice)", re.IGNORECASE)
_LONG = 30


@dataclass(frozen=True)
class Document:
    """One text: its domain, a name unique in the domain, and its text."""

    domain: str
    name: str
    text: str


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: a prompt, or a distillation prompt."""

    domain: str
    document: str
    text: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def python_source(root: str | Path | None = None) -> Iterator[Document]:
    """The ``.py`` files under ``root`` (default: the standard library), minus tests and site-packages."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = set(path.relative_to(root).parts)
        if parts & {"test", "tests", "site-packages", "dist-packages", "idlelib"}:
            continue
        if (text := _read(path)) is not None:
            yield Document("python", str(path.relative_to(root)), text)


def _distributions() -> list[importlib.metadata.Distribution]:
    """Installed distributions, one per name (the first found on ``sys.path``)."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name and name not in seen:
            seen[name] = dist
    return [seen[k] for k in sorted(seen)]


def licence_files(debian_docs: str | Path | None = "/usr/share/doc") -> Iterator[Document]:
    """Licence files of installed distributions, then Debian ``copyright`` files under ``debian_docs``."""
    for dist in _distributions():
        for file in dist.files or ():
            if _LICENCE.match(Path(str(file)).name) and (text := _read(Path(dist.locate_file(file)))) is not None:
                yield Document("licences", f"{dist.metadata['Name']}/{Path(str(file)).name}", text)
    if debian_docs is not None and Path(debian_docs).is_dir():
        for path in sorted(Path(debian_docs).glob("*/copyright")):
            if (text := _read(path)) is not None:
                yield Document("licences", f"debian/{path.parent.name}", text)


def package_docs() -> Iterator[Document]:
    """The long descriptions (READMEs) of installed distributions."""
    for dist in _distributions():
        text = dist.metadata.get_payload() or dist.metadata["Description"] or ""
        if len(text) > 200:
            yield Document("docs", str(dist.metadata["Name"]), text)


def text_files(domain: str, root: str | Path) -> Iterator[Document]:
    """Every UTF-8 file under ``root`` as a document of ``domain`` (a corpus of one's own)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"corpus folder of domain {domain!r} not found: {str(root)!r}")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if (text := _read(path)) is not None:
            yield Document(domain, str(path.relative_to(root)), text)


#: Readers of the domains: name -> a function yielding the domain's documents.
DOMAINS: Mapping[str, Callable[[], Iterable[Document]]] = {
    "python": python_source, "licences": licence_files, "docs": package_docs,
}


def part_of(document: Document, fractions: Sequence[float]) -> str:
    """The part (:data:`PARTS`) of ``document``: a hash of its domain and name against cumulative ``fractions``."""
    digest = hashlib.blake2b(f"{document.domain}\0{document.name}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    edge = 0.0
    for part, fraction in zip(PARTS, fractions):
        edge += fraction
        if u < edge:
            return part
    return PARTS[-1]


def chunks(document: Document, *, chars: int, per_document: int) -> list[Chunk]:
    """Up to ``per_document`` passages of about ``chars`` characters, whole lines, spread over ``document``.

    A passage starts at a non-blank line and takes lines until it holds at
    least ``chars`` characters; passages shorter than that (a document's
    tail) or of mostly blank space are skipped.
    """
    lines = document.text.splitlines(keepends=True)
    found: list[Chunk] = []
    start = 0
    while start < len(lines):
        if not lines[start].strip():
            start += 1
            continue
        end, size = start, 0
        while end < len(lines) and size < chars:
            size += len(lines[end])
            end += 1
        text = "".join(lines[start:end]).rstrip()
        if len(text) >= chars and len(text) <= 2 * chars and sum(c.isalnum() for c in text) > len(text) / 3:
            found.append(Chunk(document.domain, document.name, text))
        start = end
    if len(found) > per_document:
        found = [found[round(i * (len(found) - 1) / max(per_document - 1, 1))] for i in range(per_document)]
    return found


def _long_lines(text: str) -> set[str]:
    return {n for line in text.splitlines() if len(n := " ".join(line.split())) >= _LONG}


def _novel(chunk: Chunk, seen: set[str]) -> bool:
    lines = _long_lines(chunk.text)
    return not lines or len(lines & seen) * 2 <= len(lines)


def split_prompts(documents: Iterable[Document], *, fractions: Sequence[float], chars: int, per_document: int
                  ) -> dict[str, list[Chunk]]:
    """Passages of ``documents`` by part (:data:`PARTS`), each part's documents disjoint from the others'.

    Training passages that repeat distillation text, and held-out passages
    that repeat distillation or training text (more than half of their long
    lines), are dropped; so is a passage equal to an earlier one.
    """
    by_part: dict[str, list[Document]] = {part: [] for part in PARTS}
    for document in documents:
        by_part[part_of(document, fractions)].append(document)
    seen: set[str] = set()
    texts: set[str] = set()
    split: dict[str, list[Chunk]] = {}
    for part in PARTS:
        kept = []
        for document in by_part[part]:
            for chunk in chunks(document, chars=chars, per_document=per_document):
                if chunk.text not in texts and (part == "distill" or _novel(chunk, seen)):
                    kept.append(chunk)
                    texts.add(chunk.text)
        split[part] = kept
        seen |= {line for document in by_part[part] for line in _long_lines(document.text)}
    return split
