"""MkDocs hooks: the course website is built from the repository as it is, with nothing copied into docs/.

- The notebooks ``tutorials/NN_*.ipynb`` (rendered by mkdocs-jupyter with their committed outputs)
  and the figures in ``assets/`` join the build from where they live; the Tutorials section of the
  navigation lists every notebook found, in order, so renumbering one needs no edit here.
- Each tutorial page opens with what it needs and how long it runs, read from the table in
  ``tutorials/README.md`` (the one place that says it), and a link to download its ``.ipynb``.
- Links in a notebook are written for ``tutorials/`` in the repository (``../assets/x.png``,
  ``02_mlp_denoiser.ipynb``); they are rewritten to where those files are on the site.
- ``tutorials/README.md`` (the table of what each notebook teaches and needs) is the Tutorials
  section's first page.
- MathJax comes from the django-static-mathjax package (MathJax 3 as plain static files; it needs
  no Django) and is served by the site itself: the site makes no request to any other host.
  Notebook pages load it through mkdocs-jupyter (``custom_mathjax_url`` in mkdocs.yml, made
  relative to each page here); Markdown pages with math (``pymdownx.arithmatex``) get it here.
"""

import html
import importlib.util
import json
import logging
import posixpath
import re
from pathlib import Path

import markdown
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.keras_diffusion")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = "tutorials/[0-9][0-9]_*.ipynb"
# what the pages need of MathJax 3: the combined TeX component, its TeX extensions (loaded on
# first use of a macro such as \boldsymbol) and the fonts of its HTML output
MATHJAX_FILES = ("tex-mml-chtml.js", "input/tex/extensions/**/*.js", "output/chtml/fonts/woff-v2/*.woff")
MATHJAX_DIR = "mathjax/es5"  # on the site, next to the django-static-mathjax package's own layout
MATHJAX_URL = f"{MATHJAX_DIR}/{MATHJAX_FILES[0]}"  # from the site's root
# MathJax 3 reads window.MathJax before it loads. Notebooks write TeX between $ signs (nbconvert's
# MathJax 2 configuration, which it also writes, is ignored by MathJax 3); arithmatex wraps the
# Markdown pages' math in \( \) inside class="arithmatex", and only that is typeset there.
NOTEBOOK_MATH = {
    "tex": {"inlineMath": [["$", "$"], ["\\(", "\\)"]], "displayMath": [["$$", "$$"], ["\\[", "\\]"]], "processEscapes": True, "processEnvironments": True, "tags": "ams"},
}
MARKDOWN_MATH = {
    "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": True, "processEnvironments": True},
    "options": {"ignoreHtmlClass": ".*|", "processHtmlClass": "arithmatex"},
}


def notebooks():
    return sorted(ROOT.glob(NOTEBOOKS))


def on_config(config):
    """Fill the Tutorials section of the navigation with every numbered notebook; check where MathJax comes from."""
    jupyter = config.plugins.get("mkdocs-jupyter")
    if jupyter is None or jupyter.config["custom_mathjax_url"] != MATHJAX_URL:
        # unset, mkdocs-jupyter points every notebook page at a CDN
        raise PluginError(f"mkdocs.yml: mkdocs-jupyter needs custom_mathjax_url: {MATHJAX_URL} (the site's own MathJax)")
    for section in config.nav or []:
        if isinstance(section, dict) and "Tutorials" in section:
            listed = {entry if isinstance(entry, str) else next(iter(entry.values())) for entry in section["Tutorials"]}
            section["Tutorials"] += [path.relative_to(ROOT).as_posix() for path in notebooks() if path.relative_to(ROOT).as_posix() not in listed]
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns the notebooks into pages
def on_files(files, config):
    def add(path, src_dir):
        files.append(File(path, src_dir=str(src_dir), dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls))

    add("tutorials/README.md", ROOT)
    for path in notebooks():
        add(path.relative_to(ROOT).as_posix(), ROOT)
    for path in sorted((ROOT / "assets").rglob("*")):
        if path.is_file():
            add(path.relative_to(ROOT).as_posix(), ROOT)
    static = mathjax_static()
    for pattern in MATHJAX_FILES:
        for path in sorted((static / MATHJAX_DIR).glob(pattern)):
            add(path.relative_to(static).as_posix(), static)
    return files


def mathjax_static():
    spec = importlib.util.find_spec("mathjax")
    static = Path(next(iter(spec.submodule_search_locations))) / "static" if spec and spec.submodule_search_locations else None
    if static is None or not (static / MATHJAX_DIR / MATHJAX_FILES[0]).is_file():
        raise PluginError("the site serves its own MathJax, from the django-static-mathjax package: pip install -e \".[docs]\"")
    return static


def on_page_content(content, page, config, files):
    if not is_notebook(page.file):
        return content
    content = relink(content, page, files)
    # mkdocs-jupyter writes custom_mathjax_url as it is; from the page's folder it must climb to the root
    content = content.replace(f'src="{MATHJAX_URL}"', f'src="{get_relative_url(MATHJAX_URL, page.url)}"')
    return mathjax_config(NOTEBOOK_MATH) + header(page) + content


def on_post_page(output, page, config):
    """Give MathJax to the Markdown pages that have math (the notebook pages load it themselves)."""
    if is_notebook(page.file) or 'class="arithmatex"' not in output:
        return output
    scripts = mathjax_config(MARKDOWN_MATH) + f'<script src="{get_relative_url(MATHJAX_URL, page.url)}"></script>\n'
    return output.replace("</body>", scripts + "</body>", 1)


def mathjax_config(options):
    return f"<script>window.MathJax = {json.dumps(options)};</script>\n"


def is_notebook(file):
    return file.src_uri.startswith("tutorials/") and file.src_uri.endswith(".ipynb")


def relink(content, page, files):
    """Point the notebook's relative links (written for tutorials/ in the repository) at the site's copies."""

    def replace(match):
        start, url = match.group(1), html.unescape(match.group(2))
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", url, re.IGNORECASE):  # data:, http:, anchors, absolute
            return match.group(0)
        path, _, anchor = url.partition("#")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), path))
        if target.endswith(".py") and files.get_file_from_path(target[:-3] + ".ipynb"):
            target = target[:-3] + ".ipynb"  # the jupytext twin: its page
        found = files.get_file_from_path(target)
        if found is None:
            log.warning(f"{page.file.src_uri}: the link {url!r} points to {target}, which is not on the site")
            return match.group(0)
        new = found.url_relative_to(page.file) + (f"#{anchor}" if anchor else "")
        return f'{start}="{html.escape(new)}"'

    # links and pictures only: the <script> that loads MathJax is written for the site already
    return re.sub(r'(<(?:a|img)\b[^>]*?\b(?:href|src))="([^"]*)"', replace, content)


def header(page):
    """What the notebook needs and how long it runs (tutorials/README.md's table), and its download link."""
    name = Path(page.file.src_uri).stem
    row = requirements().get(name)
    if row is None:
        log.warning(f"tutorials/README.md has no row for {name}: its table says what each notebook needs and how long it runs")
        row = {}
    cells = "".join(
        f"<dt>{label}</dt><dd>{inline(row[key])}</dd>" for key, label in (("what it needs", "Needs"), ("quick mode", "Quick mode"), ("full run", "Full run")) if key in row
    )
    download = f'<a href="{name}.ipynb" download>Download {name}.ipynb</a>'
    return (
        '<div class="admonition info tutorial-needs"><p class="admonition-title">Before you run it</p>'
        f'<dl>{cells}</dl><p>{download} · open it with <code>pip install -e ".[tutorials]" &amp;&amp; jupyter lab tutorials/</code>. '
        "This page shows the outputs committed with the notebook, not a new run.</p></div>\n"
    )


def requirements():
    """{notebook name: {column: cell}} from the table in tutorials/README.md."""
    lines = (ROOT / "tutorials" / "README.md").read_text(encoding="utf-8").splitlines()
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    if len(rows) < 3:
        return {}
    columns = [column.lower() for column in rows[0]]
    return {row[0].strip("`"): dict(zip(columns, row)) for row in rows[2:] if len(row) == len(columns)}


def inline(text):
    """One table cell's Markdown as inline HTML."""
    return re.sub(r"^<p>|</p>$", "", markdown.markdown(text))
