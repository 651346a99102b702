"""The documentation is self-contained: every relative link in the Markdown files, and every ``docs/<page>.md#anchor``
pointer in the code, leads to a file (and heading) of the repository, and nothing refers to the developers'
specification outside the repository, which users who clone it do not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the folders and files that make up the project (not virtual environments, run folders or caches)
PROJECT = ["src", "tests", "benchmarks", "docs", ".ci", "README.md", "CHANGELOG.md", "pyproject.toml"]
BINARY = {".npz", ".pt", ".png", ".so", ".pyc", ".json"}
# spelled in pieces so that this file does not match itself
FORBIDDEN = ["../" + "shared", "SPEC" + " §", "SPEC" + ".md"]

LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
DOCS_POINTER = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")


def project_files(root: Path = ROOT) -> list[Path]:
    out = []
    for name in PROJECT:
        path = root / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix not in BINARY
                and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts)
            ]
    return out


def markdown_files(root: Path = ROOT) -> list[Path]:
    return [p for p in project_files(root) if p.suffix == ".md"]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (letters, digits, ``-`` and ``_``
    stay), spaces turned into hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    text = FENCE.sub("", md.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")  # GitHub numbers repeated headings
    return out


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """The links of ``md`` that leave the repository (the docs link only to its own files: a clone must be
    complete without the network), or whose file, or heading in a Markdown file, does not exist."""
    text = CODE_SPAN.sub("", FENCE.sub("", md.read_text(encoding="utf-8")))
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            problems.append(f"{md.relative_to(root)}: link outside the repository: {target}")
            continue
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if not dest.exists():
            problems.append(f"{md.relative_to(root)}: link to missing {target}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{md.relative_to(root)}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


def test_markdown_links_resolve():
    files = markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "README.md" in files
    problems = [p for md in files for p in broken_links(md)]
    assert not problems, "\n".join(problems)


def test_docs_pointers_in_the_code_resolve():
    """``docs/neurons.md#ar-lif`` in a docstring, comment or config must name a page and a heading that exist."""
    problems, pointers = [], 0
    for path in project_files():
        if path.suffix == ".md" and path.parent == ROOT / "docs":
            continue  # the pages link each other by relative links, checked above
        for page, anchor in DOCS_POINTER.findall(path.read_text(encoding="utf-8", errors="replace")):
            pointers += 1
            doc = ROOT / "docs" / page
            if not doc.is_file():
                problems.append(f"{path.relative_to(ROOT)}: docs/{page} does not exist")
            elif anchor and anchor not in anchors(doc):
                problems.append(f"{path.relative_to(ROOT)}: no heading #{anchor} in docs/{page}")
    assert pointers > 20  # the code does point at the docs; a broken pattern would find none
    assert not problems, "\n".join(problems)


def outside_references(root: Path = ROOT) -> list[str]:
    """``file:line: text`` of every line of the project that names the specification outside the repository."""
    hits = []
    for path in project_files(root):
        rel = path.relative_to(root).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            hits += [f"{rel}:{n}: {line.strip()}" for bad in FORBIDDEN if bad in line]
    return hits


def test_nothing_refers_outside_the_repository():
    hits = outside_references()
    assert not hits, "\n".join(hits)


# the checks themselves catch what they are for


def test_slug_follows_github():
    assert slug("AR-LIF") == "ar-lif"
    assert slug("Framing: split by number") == "framing-split-by-number"
    assert slug("spiking_vgg11_bn and spiking_vgg13_bn") == "spiking_vgg11_bn-and-spiking_vgg13_bn"
    assert slug("`arlif train`") == "arlif-train"
    assert slug("Backends (fused kernels)") == "backends-fused-kernels"


@pytest.mark.parametrize(
    "link, problem",
    [
        ("[a](other.md)", None),
        ("[a](other.md#second-part)", None),
        ("[a](other.md#part-1)", None),
        ("[a](#top)", None),
        ("[a](https://example.org/page)", "outside the repository"),
        ("[a](missing.md)", "missing"),
        ("[a](other.md#nowhere)", "no heading #nowhere"),
        ("[a](#nowhere)", "no heading #nowhere"),
    ],
)
def test_broken_links_are_found(tmp_path, link, problem):
    (tmp_path / "other.md").write_text("# Other\n\n## Second part\n\n## Part\n\n## Part\n")
    page = tmp_path / "page.md"
    page.write_text(f"# Top\n\nSee {link}.\n\n```\n[in a fence](missing-too.md)\n```\n`[code](gone.md)`\n")
    found = broken_links(page, tmp_path)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0]


def test_outside_references_are_found(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text('"""See ' + FORBIDDEN[1] + '2.\n\nfine line\n"""\n')
    (tmp_path / "README.md").write_text("[spec](" + FORBIDDEN[0] + "/x)\n")
    (tmp_path / "CHANGELOG.md").write_text("- " + FORBIDDEN[2] + "\n- " + FORBIDDEN[1] + "5\n")
    assert sorted(h.split(": ")[0] for h in outside_references(tmp_path)) == [
        "CHANGELOG.md:1",
        "CHANGELOG.md:2",
        "README.md:1",
        "src/mod.py:1",
    ]
