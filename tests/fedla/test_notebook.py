"""``notebooks/display.ipynb`` run by a real Jupyter kernel (nbclient): a federated matrix and a
Context display as HTML tables of shape, sites and workers, never of data; progress bars show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="install the test extras: nbclient")
nbformat = pytest.importorskip("nbformat", reason="install the test extras: nbformat")
pytest.importorskip("ipykernel", reason="install the test extras: ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "display.ipynb"


@pytest.fixture(scope="module")
def outputs() -> list[list[dict]]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return [cell.get("outputs", []) for cell in notebook.cells if cell.cell_type == "code"]


def _html(cell_outputs: list[dict]) -> str:
    (html,) = [o["data"]["text/html"] for o in cell_outputs if "text/html" in o.get("data", {})]
    return html


def _cells(html: str) -> list[str]:
    return re.findall(r"<t[hd]>(.*?)</t[hd]>", html)


def test_a_federated_matrix_shows_its_sites_and_never_its_data(outputs) -> None:
    html = _html(outputs[0])
    cells = _cells(html)
    assert cells[:8] == ["shape", "6 x 3", "dtype", "float64", "partitioning", "ROW",
                         "operation", "federated"]
    sites = re.findall(r"<tr><td>(127\.0\.0\.1:\d+)</td><td>(\d+:\d+)</td><td>(0:3)</td></tr>",
                       html)
    assert [(rows, cols) for _, rows, cols in sites] == [("0:4", "0:3"), ("4:6", "0:3")]
    assert "123.456" not in html and "123" not in "".join(cells[1:])


def test_a_derived_matrix_shows_where_it_is_computed(outputs) -> None:
    cells = _cells(_html(outputs[1]))
    assert cells[:8] == ["shape", "3 x 3", "dtype", "float64", "partitioning", "LOCAL",
                         "operation", "matmul"]
    assert "computed where its 1 federated input(s) live" in _html(outputs[1])


def test_a_context_shows_its_tenant_and_workers(outputs) -> None:
    html = _html(outputs[2])
    cells = _cells(html)
    assert cells[0] == "tenant" and re.fullmatch(r"[0-9a-f]{32}", cells[1])
    assert cells[2:6] == ["state", "open", "workers", "2"]
    states = re.findall(r"<td>(local process \d+, running)</td>", html)
    assert len(states) == 2
    assert "123.456" not in html


def test_progress_bars_show_in_the_notebook(outputs) -> None:
    widgets = [o for o in outputs[3]
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs[3] if o.get("name") == "stderr")
    # a widget where ipywidgets is installed, else tqdm's text bar, which Jupyter redraws
    assert widgets or re.search(r"kmeans: +\d+%\|.*\| \d+/1000", text), outputs[3]
