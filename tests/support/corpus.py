"""Real document folders for the file index: tests and the benchmark need files of every kind it reads.

`write_corpus` writes .txt, .md, .html, .pdf and .docx files (with fpdf2 and python-docx, so the readers
meet real files) in which every file holds one invented fact found in no other file, among harbour prose
that all files share: only the fact's made-up place name tells the files apart, so a question is answered
only by retrieving the right file, and the right page or line. `write_bulk` and `bulk_queries` give the
benchmark many files of generated words, so that queries are selective. The same seed gives the same text.
"""

from __future__ import annotations

import html
import random
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from itertools import accumulate
from pathlib import Path

import docx
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pypdf import PdfReader, PdfWriter

SCRIPT_DECOY = "scriptdecoy"
"""A word only in HTML <script> blocks: an index that reads scripts will find it."""
STYLE_DECOY = "styledecoy"
"""A word only in HTML <style> blocks."""
ENCRYPTED_WORD = "sealedword"
"""A word only in the encrypted PDF's text: an index that could read it would find it."""
PDF_PASSWORD = "harbour"

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # fixed document dates, so that only the seed changes the files
_KINDS = ((".txt", 40), (".md", 25), (".html", 15), (".pdf", 10), (".docx", 10))
_FOLDERS = ("", "notes", "archive", "archive/older", "reports")
_STEMS = ("notes", "memo", "minutes", "log", "report")
_TITLES = ("Harbour Notes", "Tides and Ledgers", "Notes from the Quay", "Ferry Minutes", "Cooperative Report")
_SECTIONS = ("Moorings", "Tides", "Ledgers", "Ferries", "Stores", "Repairs")
_FILLER = (
    "The harbour office opens at first light and closes when the last ferry is moored.",
    "Every locker on the quay is numbered, and the keys hang on hooks behind the counter.",
    "The tide tables are copied by hand into the ledger each week.",
    "Fishing boats leave before dawn and return with the turning of the tide.",
    "The lantern on the breakwater is trimmed and cleaned every evening.",
    "Visitors ask the clerks about moorings, ferries and the price of repairs.",
    "The cooperative keeps records of every crate landed on the pier.",
    "Storms from the west can close the harbour mouth for days at a time.",
    "Ropes & nets are counted again at dawn by the quay clerks.",
    "The customs house keeps its old ledgers in a dry room above the stores.",
    "A spare key for every locker is kept by the harbour master.",
    "The ferry timetable changes with the seasons and the weather.",
    "Paint, tar and canvas are bought in bulk by the cooperative each spring.",
    "The signal mast is checked after every storm by two of the dock hands.",
    "Gulls gather on the fish market roof when the boats come in.",
    "Inventory numbers are painted on every crate, mast and gauge.",
    "The dry dock is booked weeks ahead during the repair season.",
    "Letters for the islands travel on the morning ferry.",
    "The pier lamps are lit by the night watchman at dusk.",
    "Old charts of the bay are kept rolled in the map cabinet.",
)
# (fact, question): the question shares the place name and the attribute words, never the number.
_FACTS = (
    (
        "The harbour master of {name} Bay keeps the spare lantern key in locker {n}.",
        "In which locker does the harbour master of {name} Bay keep the spare lantern key?",
    ),
    (
        "The lighthouse at {name} Point was repainted with {n} litres of white paint.",
        "How many litres of white paint were used to repaint the lighthouse at {name} Point?",
    ),
    (
        "The ferry to {name} Island carries at most {n} passengers on each crossing.",
        "How many passengers can the ferry to {name} Island carry on each crossing?",
    ),
    (
        "The fishing cooperative of {name} Cove landed {n} crates of herring last season.",
        "How many crates of herring did the fishing cooperative of {name} Cove land last season?",
    ),
    (
        "The tide gauge at {name} Quay is listed under inventory number {n}.",
        "Under which inventory number is the tide gauge at {name} Quay listed?",
    ),
    (
        "The customs house of {name} holds a ledger of {n} signed manifests.",
        "How many signed manifests are in the ledger at the customs house of {name}?",
    ),
    (
        "The signal mast at {name} Head stands {n} centimetres above the pier.",
        "How many centimetres does the signal mast at {name} Head stand above the pier?",
    ),
    (
        "The dry dock at {name} Harbour charges {n} crowns for a week of repairs.",
        "How many crowns does the dry dock at {name} Harbour charge for a week of repairs?",
    ),
)
_ONSETS = ("Qu", "V", "Th", "Z", "Dr", "Br", "K", "Sk", "Gl", "Pr", "Y", "Fr", "Ost", "Mh")
_VOWELS = ("a", "e", "i", "o", "y")
_MIDDLES = ("ll", "lm", "rv", "nd", "sk", "th", "rr", "lz", "mb", "rq")
_ENDINGS = ("on", "ora", "is", "ek", "ane", "ix", "en", "or", "ith", "aro")
_LANGUAGE_SEED = 20240101  # the bulk vocabulary is the same for every seed, so queries match any bulk folder


@dataclass(frozen=True)
class Fact:
    """The one fact a corpus file holds, and where."""

    path: Path
    """The absolute path of the file holding it."""
    question: str
    """A question a user would ask: it names the place and the attribute, not the answer."""
    answer: str
    """A short phrase found verbatim in the file's text (a four-digit number)."""
    page: int | None
    """The 1-based PDF page holding the fact; None for other kinds."""
    line: int | None
    """The 1-based source line holding the fact in .txt and .md files; None for other kinds."""


@dataclass(frozen=True)
class _Document:
    """A document before it is written: pages of paragraphs of sentences, one sentence the fact."""

    title: str
    pages: list[list[list[str]]]
    fact: str


def write_corpus(folder: Path, count: int = 60, seed: int = 7) -> list[Fact]:
    """Writes `count` documents of mixed kinds under folder (some in subfolders), one fact each."""
    if count < 50:
        raise ValueError("a corpus has at least 50 documents, so that every kind is there several times")
    rng = random.Random(seed)
    kinds = _kinds(count)
    rng.shuffle(kinds)
    names = _names(rng, count)
    numbers = rng.sample(range(1000, 10000), count)
    facts: list[Fact] = []
    pdfs = 0
    for index, (kind, name, number) in enumerate(zip(kinds, names, numbers, strict=True)):
        sentence, question = (text.format(name=name, n=number) for text in rng.choice(_FACTS))
        pages, page = 1, 1
        if kind == ".pdf":
            pdfs += 1
            pages = rng.randint(2, 3)
            page = 1 if pdfs % 5 == 0 else rng.randint(2, pages)  # most facts past page 1
        document = _document(rng, sentence, pages, page)
        path = (folder / rng.choice(_FOLDERS) / f"{rng.choice(_STEMS)}-{index:03d}{kind}").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        line = _write(kind, document, path)
        facts.append(Fact(path, question, str(number), page if kind == ".pdf" else None, line))
    return facts


def _kinds(count: int) -> list[str]:
    shares = [(kind, count * share // 100) for kind, share in _KINDS]
    kinds = [kind for kind, n in shares for _ in range(n)]
    return kinds + [".txt"] * (count - len(kinds))


def _names(rng: random.Random, count: int) -> list[str]:
    """Distinct place names built from syllables (such as "Quillon"), so none is an ordinary word."""
    names: dict[str, None] = {}
    while len(names) < count:
        parts = (_ONSETS, _VOWELS, _MIDDLES, _ENDINGS)
        names["".join(rng.choice(part) for part in parts)] = None
    return list(names)


def _document(rng: random.Random, fact: str, pages: int, page: int) -> _Document:
    body = [[rng.sample(_FILLER, rng.randint(3, 4)) for _ in range(rng.randint(3, 4))] for _ in range(pages)]
    paragraph = rng.choice(body[page - 1])
    paragraph.insert(rng.randint(0, len(paragraph)), fact)
    return _Document(rng.choice(_TITLES), body, fact)


def _write(kind: str, document: _Document, path: Path) -> int | None:
    """Writes the document as `kind`; returns the fact's line for text kinds."""
    paragraphs = [paragraph for page in document.pages for paragraph in page]
    match kind:
        case ".txt" | ".md":
            lines = _text_lines(document.title, paragraphs, document.fact, markdown=kind == ".md")
            path.write_text("\n".join(lines), encoding="utf-8", newline="\n")
            return lines.index(document.fact) + 1
        case ".html":
            path.write_text(_html(document.title, paragraphs), encoding="utf-8", newline="\n")
        case ".pdf":
            _pdf(document.title, [[" ".join(p) for p in page] for page in document.pages]).output(path)
        case ".docx":
            word = docx.Document()
            word.core_properties.created = word.core_properties.modified = _EPOCH
            word.add_heading(document.title, level=1)
            for paragraph in paragraphs:
                word.add_paragraph(" ".join(paragraph))
            word.save(str(path))
    return None


def _text_lines(title: str, paragraphs: list[list[str]], fact: str, markdown: bool) -> list[str]:
    """Paragraphs wrapped at 78 columns, the fact whole on a line of its own."""
    lines = [f"# {title}" if markdown else title, ""]
    for index, paragraph in enumerate(paragraphs):
        if markdown and index % 2 == 1:
            lines += [f"## {_SECTIONS[index % len(_SECTIONS)]}", ""]
        at = paragraph.index(fact) if fact in paragraph else len(paragraph)
        lines += textwrap.wrap(" ".join(paragraph[:at]), 78) + paragraph[at : at + 1]
        lines += [*textwrap.wrap(" ".join(paragraph[at + 1 :]), 78), ""]
    return lines


def _html(title: str, paragraphs: list[list[str]]) -> str:
    body = "\n".join(f"<p>{html.escape(' '.join(paragraph))}</p>" for paragraph in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>.{STYLE_DECOY} {{ color: navy; }} /* {STYLE_DECOY} harbour */</style>\n"
        f'<script>const note = "{SCRIPT_DECOY} lantern ferry"; console.log(note);</script>\n'
        f"</head>\n<body>\n<h1>{title}</h1>\n{body}\n"
        "<p>Kept by the harbour office &amp; the ferry clerks.</p>\n</body>\n</html>\n"
    )


def _pdf(title: str, pages: list[list[str]]) -> FPDF:
    """A PDF with one page per list of paragraphs, in a core font so that the text can be extracted."""
    pdf = FPDF()
    pdf.set_creation_date(_EPOCH)
    for number, paragraphs in enumerate(pages):
        pdf.add_page()
        if number == 0:
            pdf.set_font("Helvetica", "B", 16)
            pdf.cell(0, 10, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=11)
        for text in paragraphs:
            pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(3)
    return pdf


def write_corrupt_pdf(path: Path) -> None:
    """A file named .pdf holding the garbled first half of a real PDF: pypdf cannot open it."""
    data = bytearray(bytes(_pdf("Damaged", [[_FILLER[0]] * 6]).output()))
    data = data[: len(data) // 2]
    data[len(data) // 2 :] = bytes(b ^ 0x5A for b in data[len(data) // 2 :])
    path.write_bytes(bytes(data))


def write_encrypted_pdf(path: Path) -> None:
    """A real two-page PDF, encrypted with PDF_PASSWORD as its user password; it holds ENCRYPTED_WORD."""
    plain = _pdf("Sealed", [[f"{_FILLER[0]} {ENCRYPTED_WORD}"], [_FILLER[1]]]).output()
    writer = PdfWriter(clone_from=PdfReader(BytesIO(plain)))
    writer.encrypt(user_password=PDF_PASSWORD, owner_password=PDF_PASSWORD + "-owner")
    with path.open("wb") as file:
        writer.write(file)


def write_binary(path: Path) -> None:
    """Random bytes with NULs every sixteenth byte: not text, whatever the file is named."""
    data = bytearray(random.Random(path.name).randbytes(4096))
    data[::16] = bytes(len(data[::16]))
    path.write_bytes(bytes(data))


@dataclass(frozen=True)
class _Bulk:
    """The bulk files' language: generated words, Zipf-weighted, and sentences made of them."""

    sentences: list[str]
    common: frozenset[str]
    """The most frequent words, in most files: queries leave them out, so that they stay selective."""


def _bulk() -> _Bulk:
    rng = random.Random(_LANGUAGE_SEED)
    words: dict[str, None] = {}
    while len(words) < 3000:
        syllables = rng.randint(2, 3)
        words["".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(syllables))] = None
    vocabulary = list(words)
    weights = list(accumulate(1 / (rank + 20) for rank in range(len(vocabulary))))
    sentences = [
        " ".join(rng.choices(vocabulary, cum_weights=weights, k=rng.randint(6, 14))).capitalize() + "."
        for _ in range(4000)
    ]
    return _Bulk(sentences, frozenset(vocabulary[:500]))


def write_bulk(folder: Path, files: int, size_bytes: int = 5000, seed: int = 1) -> int:
    """Writes `files` .txt and .md files of about size_bytes, 500 to a folder; returns the bytes written."""
    rng = random.Random(seed)
    sentences = _bulk().sentences
    per_file = max(1, size_bytes * len(sentences) // sum(len(s) + 1 for s in sentences))
    total = 0
    for index in range(files):
        chosen = rng.choices(sentences, k=per_file)
        text = "\n\n".join(" ".join(chosen[at : at + 6]) for at in range(0, per_file, 6)) + "\n"
        kind = ".md" if index % 3 == 0 else ".txt"
        if kind == ".md":
            text = f"# {chosen[0][:-1]}\n\n{text}"
        sub = folder / f"part-{index // 500:03d}"
        if index % 500 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file-{index:05d}{kind}").write_text(text, encoding="ascii", newline="\n")
        total += len(text)
    return total


def bulk_queries(seed: int = 1, count: int = 100) -> list[str]:
    """Queries of 2-4 uncommon words from one bulk sentence: each matches a few percent of the files."""
    rng = random.Random(seed)
    bulk = _bulk()
    queries: list[str] = []
    while len(queries) < count:
        sentence = rng.choice(bulk.sentences).rstrip(".").lower().split()
        words = [word for word in dict.fromkeys(sentence) if word not in bulk.common]
        if len(words) >= 2:
            queries.append(" ".join(rng.sample(words, min(len(words), rng.randint(2, 4)))))
    return queries
