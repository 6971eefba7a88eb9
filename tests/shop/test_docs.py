"""The docs cannot drift from the code: references resolve, labs exist, SQL is current.

A chapter names code as inline code, `path/to/file.py` or
`path/to/file.py:Symbol` (a dotted Symbol walks into classes), names labs
as `python manage.py lab NAME`, and names another chapter with a link,
`[chapter 12](12-locking-deadlocks.md)`. These tests resolve every such
reference, refuse a "chapter NN" that is plain text or names a chapter not
written yet (in README.md too), run `docs_snapshots --check` against the test
database, and build the site with `mkdocs build --strict`.
"""

import ast
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from django.core.management import call_command

from shop import erd, lab

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TOP_LEVEL_DIRS = (
    "shop",
    "catalog",
    "orders",
    "analytics",
    "scripts",
    "tests",
    "docs",
    "bench",
    "orm",
)
ROOT_FILES = (
    "Makefile",
    "docker-compose.yml",
    "Dockerfile",
    "manage.py",
    "pyproject.toml",
    "requirements.txt",
    "mkdocs.yml",
    "README.md",
    ".ci/run",
)
# A span that starts like a path is claimed as a reference and must resolve;
# anything else in backticks (a command, an SQL keyword) is left alone.
CLAIMED = re.compile(
    r"^(?:(?:{dirs})/|(?:{files})(?::|$))".format(
        dirs="|".join(TOP_LEVEL_DIRS),
        files="|".join(re.escape(name) for name in ROOT_FILES),
    )
)
REFERENCE = re.compile(r"^(?P<path>[\w./-]+?)(?::(?P<symbol>[A-Za-z_][\w.]*))?$")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LAB_COMMAND = re.compile(r"python manage\.py lab +([a-z0-9][a-z0-9-]*)")
CHAPTERS = DOCS / "chapters"
MARKDOWN_LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")
# "chapter 05", "Chapters 10 to 12", "chapters 11 and 12", across a line break
# too. Two digits only: the PostgreSQL manual's "chapter 9" is not ours.
CHAPTER_MENTION = re.compile(
    r"\b[Cc]hapters?\s+(?P<numbers>\d{2}(?:\s*(?:,|and|or|to|-|–)\s*\d{2})*)\b"
)
CHAPTER_RANGE = re.compile(r"(\d{2})\s*(?:to|-|–)\s*(\d{2})")
CHAPTER_FILE = re.compile(r"^(?P<number>\d{2})-[\w-]+\.md$")
LINKED_CHAPTER = re.compile(r"^(?:[Cc]hapters?\s+)?(?P<number>\d{2})$")


def markdown_files():
    return sorted(path for path in DOCS.rglob("*.md") if "snippets" not in path.parts)


def prose_lines(path):
    """Yield (line number, text) for lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def code_references():
    """Yield (where, span) for each inline code span that claims to be a reference."""
    for path in markdown_files():
        for number, line in prose_lines(path):
            for span in CODE_SPAN.findall(line):
                if CLAIMED.match(span.strip()):
                    yield f"{path.relative_to(ROOT)}:{number}", span.strip()


@cache
def python_symbols(path: Path) -> dict[str, ast.AST]:
    """Map every dotted name defined in a module (classes, functions, assignments)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: dict[str, ast.AST] = {}

    def visit(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                names[prefix + node.name] = node
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            names[prefix + name.id] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names[prefix + node.target.id] = node
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.For):
                # Settings define names under `if`; they are still module names.
                blocks = [node.body, getattr(node, "orelse", [])]
                blocks += [handler.body for handler in getattr(node, "handlers", [])]
                blocks.append(getattr(node, "finalbody", []))
                for block in blocks:
                    visit(block, prefix)

    visit(tree.body, "")
    return names


def symbol_problem(path: Path, symbol: str) -> str | None:
    """Return why `symbol` does not resolve in `path`, or None if it does."""
    if path.suffix == ".py":
        if symbol not in python_symbols(path):
            return f"{symbol} is not defined in it"
        return None
    text = path.read_text(encoding="utf-8")
    if path.name == "Makefile":
        found = re.search(rf"^{re.escape(symbol)}:", text, re.MULTILINE)
        return None if found else f"it has no target {symbol}"
    if path.suffix == ".sh":
        found = re.search(rf"^{re.escape(symbol)}\(\)", text, re.MULTILINE)
        return None if found else f"it has no function {symbol}"
    return "only .py files, the Makefile and shell scripts can have a :Symbol"


def reference_problem(span: str) -> str | None:
    match = REFERENCE.match(span)
    if not match:
        return "write it as path/to/file.py or path/to/file.py:Symbol"
    path = ROOT / match["path"]
    if not path.exists():
        return f"{match['path']} does not exist"
    if match["symbol"] is None:
        return None
    if path.is_dir():
        return "a folder has no symbols"
    return symbol_problem(path, match["symbol"])


def mentioned_labs():
    for path in markdown_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in LAB_COMMAND.findall(line):
                yield f"{path.relative_to(ROOT)}:{number}", name


def written_chapters() -> set[str]:
    """The numbers of the chapters that exist, such as "01" and "12"."""
    return {path.name[:2] for path in CHAPTERS.glob("[0-9][0-9]-*.md")}


def course_files():
    return [*markdown_files(), ROOT / "README.md"]


def prose_text(path: Path) -> str:
    """The file outside fenced blocks and code spans, its line breaks kept."""
    total = len(path.read_text(encoding="utf-8").splitlines())
    kept = dict(prose_lines(path))
    text = "\n".join(kept.get(number, "") for number in range(1, total + 1))
    return CODE_SPAN.sub(lambda span: " " * len(span[0]), text)


def mentioned_chapters(numbers: str) -> list[str]:
    """The chapter numbers a mention names: "10 to 12" names 10, 11 and 12."""
    named = set(re.findall(r"\d{2}", numbers))
    for start, end in CHAPTER_RANGE.findall(numbers):
        named.update(f"{n:02d}" for n in range(int(start), int(end) + 1))
    return sorted(named)


def chapter_reference_problems(
    text: str, base: Path, written: set[str]
) -> list[tuple[int, str]]:
    """Return (line, why) for each wrong chapter link or mention in `text`.

    `base` is the folder relative links start from. A link to a `.md` file
    must resolve, and a link whose text is a chapter number must lead to that
    chapter. Outside links, a "chapter NN" must not be plain text: a chapter
    that exists is linked, one that does not is not named at all.
    """
    problems = []

    def line(offset):
        return text.count("\n", 0, offset) + 1

    for link in MARKDOWN_LINK.finditer(text):
        target = link["target"].split("#", 1)[0]
        if "://" in target or not target.endswith(".md"):
            continue
        shown = f"[{link['text']}]({link['target']})"
        path = base / target
        if not path.is_file():
            problems.append((line(link.start()), f"{shown}: {target} does not exist"))
            continue
        in_file = CHAPTER_FILE.match(path.name)
        in_text = LINKED_CHAPTER.match(link["text"].strip())
        if in_file and in_text and in_file["number"] != in_text["number"]:
            problems.append(
                (
                    line(link.start()),
                    f"{shown}: the text names chapter {in_text['number']}, "
                    f"the link leads to chapter {in_file['number']}",
                )
            )
    unlinked = MARKDOWN_LINK.sub(lambda link: " " * len(link[0]), text)
    for mention in CHAPTER_MENTION.finditer(unlinked):
        said = " ".join(mention[0].split())
        named = mentioned_chapters(mention["numbers"])
        missing = [number for number in named if number not in written]
        if missing:
            why = (
                f"'{said}': chapter {', '.join(missing)} is not written yet; "
                "name no chapter that does not exist (say 'a later chapter on ...')"
            )
        else:
            why = f"'{said}' is plain text: link it, [chapter NN](NN-name.md)"
        problems.append((line(mention.start()), why))
    return problems


def test_the_docs_have_code_references_to_check():
    assert len(list(code_references())) > 50


def test_every_code_reference_in_the_docs_resolves():
    problems = [
        f"{where}: `{span}`: {problem}"
        for where, span in code_references()
        if (problem := reference_problem(span))
    ]
    assert problems == []


def test_the_reference_checker_rejects_what_does_not_exist():
    assert reference_problem("catalog/models.py:StockLevel.available") is None
    assert reference_problem("shop/settings/base.py:CACHES") is None
    assert reference_problem("Makefile:docs") is None
    assert reference_problem("catalog/models.py:StockLevel.nonexistent")
    assert reference_problem("catalog/nonexistent.py")
    assert reference_problem("shop/sql/grants_v01.sql:Anything")


def test_every_lab_the_docs_mention_is_registered():
    registered = lab.discover()
    mentioned = list(mentioned_labs())
    assert mentioned, "the chapters should tell the reader which lab to run"
    unknown = [
        f"{where}: {name}" for where, name in mentioned if name not in registered
    ]
    assert unknown == [], "`python manage.py lab --list` shows the registered labs"


def test_every_chapter_link_and_mention_names_a_written_chapter():
    written = written_chapters()
    assert {"01", "12"} <= written
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {why}"
        for path in course_files()
        for line, why in chapter_reference_problems(
            prose_text(path), path.parent, written
        )
    ]
    assert problems == []


def test_the_chapter_checker_rejects_missing_chapters_and_plain_mentions():
    def problems(text):
        found = chapter_reference_problems(text, CHAPTERS, {"10", "12"})
        return [why for _, why in found]

    assert problems("see [chapter 10](10-transactions.md)") == []
    assert problems("[10](10-transactions.md) and [12](12-locking-deadlocks.md)") == []
    assert problems("a later chapter on indexing; the manual's chapter 9") == []
    assert problems("[chapter 99](99-nothing.md)")  # no such file
    assert problems("[chapter 12](10-transactions.md)")  # text and file disagree
    assert problems("see chapter 10")  # written, but not a link
    assert problems("see chapter 99")  # not written
    assert problems("see chapter\n   99")
    assert problems("chapters 10 and 99")
    assert problems("Chapters 10 to 12")  # 11 is not written here


def test_the_er_diagram_snapshot_is_current():
    call_command("er_diagram", "--check")


def test_the_er_diagram_draws_cardinality_and_optionality_from_the_models():
    diagram = erd.render_mermaid()
    # Nullable self-reference: a category has zero or one parent.
    assert 'catalog_category |o..o{ catalog_category : "parent"' in diagram
    # Required foreign key: a product has exactly one category.
    assert 'catalog_category ||..o{ catalog_product : "category"' in diagram
    # One-to-one: a user is at most one customer.
    assert 'accounts_user ||..o| accounts_customer : "user"' in diagram
    assert '        numeric price "numeric(12, 2)"' in diagram
    assert "        bigint user_id FK, UK" in diagram
    assert erd.render_mermaid() == diagram


@pytest.mark.django_db(databases=["default", "owner"])
def test_the_sql_the_docs_show_is_what_the_code_runs():
    call_command("docs_snapshots", "--check")


@pytest.mark.slow
def test_the_docs_site_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", tmp_path],
        cwd=ROOT,
        # Material's end-of-life banner is not a build warning; keep it out.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
