"""The README's two set-up commands and CI's test command must not drift apart."""

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
