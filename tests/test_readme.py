"""The README's two set-up commands and CI's test command must not drift apart."""

import fnmatch
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_opens_with_two_commands():
    train, tests = readme_commands()
    assert train.endswith("python -m keras_diffusion.train")
    assert tests.endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_readme_figures_exist():
    text = (ROOT / "README.md").read_text()
    for path in re.findall(r"\]\((assets/[^)]+)\)", text):
        assert (ROOT / path).is_file(), path


README_MAX_LINES = 200
# Pages another change writes; a link to them may run ahead of the page itself.
PAGES_TO_COME = {"docs/results/sampling.md", "docs/results/text.md"}
# What the website takes from the repository as it is (docs/hooks.py): the figures and the
# numbered notebooks sit at the site's root, beside the pages of docs/.
SITE_FROM_ROOT = ("assets/*", "tutorials/[0-9][0-9]_*.ipynb")

FENCED = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def test_readme_is_a_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}: "
        "measured results belong on docs/results/, guides on docs/guides/"
    )


def relative_links(path):
    """The relative targets of a Markdown file's links and pictures, outside code."""
    text = CODE_SPAN.sub("", FENCED.sub("", path.read_text(encoding="utf-8")))
    for target in LINK.findall(text):
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.IGNORECASE):
            continue  # http(s), mailto, anchors on the same page, absolute paths
        yield target.split("#", 1)[0]


def resolve(path, target):
    """The file a link points at, or None where a docs page's link leaves the site.

    The README's links are the repository's. A page of docs/ links as the site sees it:
    relative to the page inside docs/, where assets/ and tutorials/ stand for the
    repository's own folders; a link out of docs/ (../../assets/x.png) works on disk only.
    """
    if ROOT / "docs" not in path.parents:
        return (path.parent / target).resolve()
    docs = (ROOT / "docs").resolve()
    site_path = (path.parent / target).resolve()
    if docs not in site_path.parents:
        return None
    inside = site_path.relative_to(docs).as_posix()
    if not site_path.exists() and any(fnmatch.fnmatch(inside, pattern) for pattern in SITE_FROM_ROOT):
        return ROOT / inside
    return site_path


def markdown_files():
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def test_relative_links_point_at_files():
    broken = []
    for path in markdown_files():
        for target in relative_links(path):
            found = resolve(path, target)
            if found is None:
                broken.append(f"{path.relative_to(ROOT)}: ({target}) leaves docs/, so the site cannot follow it")
                continue
            if found.exists():
                continue
            name = found.relative_to(ROOT.resolve()).as_posix()
            if name not in PAGES_TO_COME:
                broken.append(f"{path.relative_to(ROOT)}: ({target}) -> {name}, which does not exist")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_links_are_read_as_the_site_reads_them():
    page = ROOT / "docs" / "results" / "ladder.md"
    assert resolve(page, "../assets/ladder.png") == ROOT / "assets" / "ladder.png"
    assert resolve(page, "../tutorials/04_unet.ipynb") == ROOT / "tutorials" / "04_unet.ipynb"
    assert resolve(page, "speed.md") == (ROOT / "docs" / "results" / "speed.md").resolve()
    assert resolve(page, "../../assets/ladder.png") is None
    assert not resolve(page, "../tutorials/README.md").exists()  # not on the site
    assert resolve(ROOT / "README.md", "assets/ladder.png") == (ROOT / "assets" / "ladder.png").resolve()
    text = '[a](x.md) `[b](y.md)` ![c](../assets/z.png "title") [d](https://e.org) [f](#g)\n```\n[h](i.md)\n```\n'
    assert LINK.findall(CODE_SPAN.sub("", FENCED.sub("", text))) == ["x.md", "../assets/z.png", "https://e.org", "#g"]


def test_every_figure_says_how_it_was_made():
    provenance = (ROOT / "docs" / "results" / "figures.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([^`\s]+)`", provenance))
    missing = sorted(path.name for path in (ROOT / "assets").iterdir() if path.is_file() and path.name not in named)
    assert not missing, f"docs/results/figures.md says nothing of how these were made: {missing}"
