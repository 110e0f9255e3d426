"""Importing the package, in a script or a Jupyter kernel, shows none of TensorFlow's start-up lines; the tutorials extra installs.

The first cell of every notebook imports the package; TensorFlow's C++ notices (absl, oneDNN,
"Could not find cuda drivers") read like errors to a learner and would open every notebook.
"""

import configparser
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# what TensorFlow's C++ and absl logging print on a machine without a GPU (as tests/test_quiet_cli.py)
NOISE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|cuda|cuInit|oneDNN|TF_ENABLE_ONEDNN_OPTS|"
    r"This TensorFlow binary is optimized|rebuild TensorFlow|WARNING:tensorflow",
    re.IGNORECASE | re.MULTILINE,
)
# names that bring in TensorFlow (keras_diffusion itself loads them on first use)
IMPORT = "import keras_diffusion, keras_diffusion.models; keras_diffusion.DiffusionModel; keras_diffusion.models.build_model('mlp_seed', hidden=8, timesteps=10)"


def _environment():
    return {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}


def test_importing_the_package_prints_nothing_of_tensorflow():
    code = f"import sys\n{IMPORT}\nprint('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"], result.stdout  # TensorFlow did load: the quiet is not an absence
    assert not NOISE.search(result.stderr), f"TensorFlow's start-up lines on stderr:\n{result.stderr}"


def test_importing_the_package_in_a_jupyter_kernel_prints_nothing_of_tensorflow():
    """ipykernel shows what the process writes to file descriptor 2, so the C++ lines would land in the cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(IMPORT), nbformat.v4.new_code_cell("print('done')")])
    saved = os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the kernel inherits the environment
    try:
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    finally:
        if saved is not None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = saved
    shown = "".join(output.get("text", "") for cell in notebook.cells for output in cell.outputs if output.output_type == "stream")
    assert "done" in shown
    assert not NOISE.search(shown), f"the cell that imports the package shows:\n{shown}"


def _extra(name):
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return [line.strip() for line in parser["options.extras_require"][name].splitlines() if line.strip()]


def test_the_tutorials_extra_is_installed_with_the_notebooks_imports():
    """What ``pip install -e ".[tutorials]"`` installs is here (the dev extra includes it), and covers the notebooks' imports."""
    missing = []
    for requirement in _extra("tutorials"):
        name = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0]
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    assert not missing, f"the tutorials extra's {missing} are not installed: pip install -e \".[dev]\""
    imported = set()
    for path in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"):
        imported |= set(re.findall(r"^\s*(?:import|from)\s+(\w+)", path.read_text(encoding="utf-8"), re.MULTILINE))
    unknown = [name for name in sorted(imported) if name != "keras_diffusion" and importlib.util.find_spec(name) is None]
    assert not unknown, f"the notebooks import {unknown}, which nothing installed provides: add them to the tutorials extra"
