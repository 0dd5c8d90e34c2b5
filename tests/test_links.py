"""README.md and docs/ hold together: every relative link resolves.

Links are `[text](target)`, `![alt](target)`, reference definitions
`[label]: target` and `<img src="target">`, outside code blocks and code
spans. A target's `#anchor` must name a heading of the markdown file it
points at (GitHub's rule for heading anchors). Also: README.md stays a
front door of at most 300 lines, and docs/index.md links to every page of
docs/.
"""

import glob
import os
import re

import pytest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_README_MAX_LINES = 300

_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?"
                          r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)",
                                   re.M)
_IMG_SRC = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.I)
_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.M)
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, mailto:, ...


def markdown_files():
    """README.md and every .md under docs/, as paths from the repo root."""
    docs = glob.glob(os.path.join(_REPO_ROOT, "docs", "**", "*.md"),
                     recursive=True)
    return ["README.md"] + sorted(
        os.path.relpath(path, _REPO_ROOT) for path in docs)


def _read(path):
    with open(os.path.join(_REPO_ROOT, path), encoding="utf-8") as f:
        return f.read()


def _without_code(text):
    """The text with fenced code blocks and code spans blanked out."""
    text = _FENCE.sub("", text)
    return _CODE_SPAN.sub("", text)


def links(text):
    """Every link target in a markdown text, outside code."""
    prose = _without_code(text)
    found = []
    for pattern in (_INLINE_LINK, _REFERENCE_DEFINITION, _IMG_SRC):
        found.extend(m.group(1) for m in pattern.finditer(prose))
    return found


def _slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    """The anchors of a markdown text's headings, duplicates numbered."""
    seen = {}
    result = set()
    for m in _HEADING.finditer(_FENCE.sub("", text)):
        slug = _slug(m.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(path, text):
    """The link targets of `path` that do not resolve, with why."""
    broken = []
    for target in links(text):
        if _EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        if file_part:
            resolved = os.path.normpath(os.path.join(
                _REPO_ROOT, os.path.dirname(path), file_part))
        else:
            resolved = os.path.join(_REPO_ROOT, path)
        if not os.path.exists(resolved):
            broken.append(f"{target} (no such file or folder)")
        elif anchor and resolved.endswith(".md"):
            with open(resolved, encoding="utf-8") as f:
                if anchor.lower() not in anchors(f.read()):
                    broken.append(f"{target} (no heading #{anchor})")
    return broken


@pytest.mark.parametrize("path", markdown_files())
def test_every_relative_link_resolves(path):
    assert broken_links(path, _read(path)) == [], path


def test_a_broken_link_is_found():
    text = ("[ok](docs/RESULTS.md) [gone](docs/NO_SUCH_PAGE.md#x) "
            "<img src=\"docs/results/none.png\"> `[code](not/a/link.md)`\n"
            "[ref]: docs/missing/\n"
            "[anchor](docs/RESULTS.md#no-such-heading) "
            "[web](https://example.com/x.md) [mail](mailto:a@b.c)\n"
            "```\n[in a block](nowhere.md)\n```\n")
    assert broken_links("README.md", text) == [
        "docs/NO_SUCH_PAGE.md#x (no such file or folder)",
        "docs/RESULTS.md#no-such-heading (no heading #no-such-heading)",
        "docs/missing/ (no such file or folder)",
        "docs/results/none.png (no such file or folder)",
    ]


def test_anchors_follow_githubs_rule():
    text = ("# Engine vs `model.fit` (budget: >= 3.0x)\n"
            "## 3. The wrapping API\n## Results\n## Results\n"
            "```\n# not a heading\n```\n")
    assert anchors(text) == {"engine-vs-modelfit-budget--30x",
                             "3-the-wrapping-api", "results", "results-1"}


def test_readme_is_a_front_door():
    lines = _read("README.md").splitlines()
    assert len(lines) <= _README_MAX_LINES, (
        f"README.md has {len(lines)} lines; at most {_README_MAX_LINES}: "
        "move the details into docs/ and link to them")


def test_the_docs_index_links_to_every_page():
    index = _read(os.path.join("docs", "index.md"))
    targets = {os.path.normpath(t.partition("#")[0]) for t in links(index)}
    pages = sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(_REPO_ROOT, "docs", "*.md")))
    missing = [p for p in pages if p != "index.md" and p not in targets]
    assert missing == [], f"docs/index.md does not link to {missing}"
