"""A document's text, split into passages that say where they are (a PDF's page, a text's lines).

Text and Markdown are read as they are; HTML without its markup, scripts and styles (the
standard library's parser); PDF page by page (pypdf); Word `.docx` paragraph by paragraph
(python-docx), each paragraph a line. A file that cannot be read raises `Unreadable` with a
reason for the user: the index lists it as skipped and goes on.
"""

from __future__ import annotations

import html.parser
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from desktop.errors import FoundryDeskError

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst", ".text"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
"""The kinds of file that are indexed; others in a folder are not looked at."""

MAX_FILE_BYTES = 100 * 1024 * 1024
"""Larger files are skipped: a document this big is most likely an export or a dump."""
PASSAGE_CHARS = 900
"""A passage ends at the first line break after this many characters (about 200 tokens): small
enough that several fit before a question, large enough to hold a fact with its context."""
MAX_PASSAGE_CHARS = 2000
"""A passage with no line break (a wall of text) is cut here, between words."""


class Unreadable(FoundryDeskError, ValueError):
    """The file cannot be indexed; the message says why, in words for the user."""


@dataclass(frozen=True)
class Passage:
    text: str
    page: int | None = None
    """1-based page of a PDF."""
    first_line: int | None = None
    """1-based lines of a text or HTML file, or paragraphs of a Word document."""
    last_line: int | None = None


def read_passages(path: Path, size: int) -> list[Passage]:
    """The passages of the file at `path` (`size` bytes), in order. Raises Unreadable."""
    if size > MAX_FILE_BYTES:
        raise Unreadable(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            return pdf_passages(path)
        if suffix == ".docx":
            return list(split_lines(enumerate(docx_paragraphs(path), start=1)))
        text = decode(path.read_bytes())
    except OSError as error:
        raise Unreadable(f"could not be read: {error.strerror or error}") from error
    if suffix in HTML_SUFFIXES:
        return list(split_lines(html_lines(text)))
    return list(split_lines(enumerate(text.splitlines(), start=1)))


def decode(data: bytes) -> str:
    """A text file's characters: UTF-8 (with or without a BOM), else Windows' Western encoding.
    NUL bytes mean it is not text at all."""
    if b"\x00" in data[:8192]:
        raise Unreadable("not a text file (binary content)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def split_lines(lines: Iterable[tuple[int, str]], page: int | None = None) -> Iterator[Passage]:
    """Numbered lines gathered into passages of about PASSAGE_CHARS, broken at a blank line when
    one comes near the end, else at a line break; blank passages are left out."""
    gathered: list[str] = []
    size, first, last = 0, 0, 0
    for number, line in lines:
        stripped = line.strip()
        if not gathered and not stripped:
            continue
        for piece in pieces_of(stripped):
            if not gathered:
                first = number
            gathered.append(piece)
            size += len(piece) + 1
            last = number
            if size >= PASSAGE_CHARS:
                yield passage_of(gathered, first, last, page)
                gathered, size = [], 0
        if not stripped and size >= PASSAGE_CHARS * 2 // 3 and gathered:
            yield passage_of(gathered, first, last, page)
            gathered, size = [], 0
    if gathered:
        yield passage_of(gathered, first, last, page)


def pieces_of(line: str) -> Iterator[str]:
    """A line, cut between words into pieces of at most MAX_PASSAGE_CHARS."""
    while len(line) > MAX_PASSAGE_CHARS:
        cut = line.rfind(" ", 0, MAX_PASSAGE_CHARS)
        cut = cut if cut > 0 else MAX_PASSAGE_CHARS
        yield line[:cut]
        line = line[cut:].lstrip()
    yield line


def passage_of(lines: list[str], first: int, last: int, page: int | None) -> Passage:
    if page is not None:  # a PDF's lines are its layout's, not the user's: one paragraph, the page says where
        return Passage(text=" ".join(line for line in lines if line).strip(), page=page)
    return Passage(text="\n".join(line for line in lines if line).strip(), first_line=first, last_line=last)


def pdf_passages(path: Path) -> list[Passage]:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("password-protected PDF")
        passages: list[Passage] = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            passages += split_lines(enumerate(text.splitlines(), start=1), page=number)
    except Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise Unreadable(f"not a readable PDF ({type(error).__name__}: {error})") from error
    except NotImplementedError as error:  # an encryption pypdf cannot undo
        raise Unreadable(f"PDF uses an unsupported feature: {error}") from error
    if not passages:
        raise Unreadable("PDF has no text (a scanned document?)")
    return passages


def docx_paragraphs(path: Path) -> list[str]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise Unreadable(f"not a readable Word document ({type(error).__name__})") from error
    return [paragraph.text for paragraph in document.paragraphs]


def html_lines(text: str) -> Iterator[tuple[int, str]]:
    """The visible text of an HTML page, each piece with the source line it starts on."""
    parser = VisibleText()
    parser.feed(text)
    parser.close()
    return iter(parser.lines)


class VisibleText(html.parser.HTMLParser):
    """Collects the text a browser shows: not scripts, styles, templates or the head's metadata."""

    HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})
    BREAKS = frozenset({
        "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "title", "section",
        "article", "blockquote", "pre", "table", "ul", "ol", "dt", "dd",
    })  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.HIDDEN:
            self._hidden += 1
        if tag in self.BREAKS:
            self.lines.append((self.getpos()[0], ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if self._hidden and not self._in_title:
            return
        line = self.getpos()[0]
        for offset, piece in enumerate(data.split("\n")):
            if piece.strip():
                self.lines.append((line + offset, " ".join(piece.split())))
