"""The tutorials: each .ipynb matches its jupytext .py source, and each runs top to bottom in quick mode.

Notebooks are found by name (tutorials/NN_*.py), so a new one is tested as soon as it exists.
"""

import pathlib
import shutil

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from keras_diffusion.data import find_data_dir  # noqa: E402

TUTORIALS = pathlib.Path(__file__).resolve().parents[1] / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = 600  # seconds; quick mode needs a few per cell
MAX_IPYNB_BYTES = 2_000_000  # a committed notebook with its outputs


def cells(nb):
    """(type, source) of every cell: what the .py and the .ipynb must agree on."""
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


def test_there_are_notebooks():
    assert SOURCES, f"no tutorials/NN_*.py found in {TUTORIALS}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_in_sync_with_its_py(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run `jupytext --sync tutorials/{source.name}`"
    from_py, from_ipynb = cells(jupytext.read(source)), cells(nbformat.read(ipynb, as_version=4))
    assert from_py == from_ipynb, (
        f"{ipynb.name} differs from {source.name}: edit the .py, then run `jupytext --sync tutorials/{source.name}`"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_outputs_stay_small(source):
    size = source.with_suffix(".ipynb").stat().st_size
    assert size < MAX_IPYNB_BYTES, f"{source.stem}.ipynb is {size / 1e6:.1f} MB: show fewer or smaller figures"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(source, tmp_path, monkeypatch, fake_data_dir):
    monkeypatch.setenv("KERAS_DIFFUSION_QUICK", "1")
    if find_data_dir() is None:  # no real Fashion-MNIST here: the synthetic IDX files stand in
        monkeypatch.setenv("KERAS_DIFFUSION_DATA", str(fake_data_dir))
    # run a copy, so the run directories the notebook writes land in tmp_path
    ipynb = shutil.copy(source.with_suffix(".ipynb"), tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
