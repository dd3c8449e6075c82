"""HTML for Jupyter: what a ``Matrix`` or a ``Context`` is, never the data behind it.

``Matrix._repr_html_`` shows shape, dtype, partitioning, the operation and, for federated
values, each site with the rows and columns it holds; ``Context._repr_html_`` shows the tenant
and its workers with their state. Both read only what the coordinator already knows: nothing is
computed, fetched or sent to render them, and no value of a matrix appears.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from fedla.plan import Layout, Node, unique_nodes

_TABLE = '<table style="border-collapse: collapse; text-align: left">'


def _rows(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{escape(str(name))}</th><td>{escape(str(value))}</td></tr>"
                   for name, value in pairs)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"{_TABLE}<tr>{head}</tr>{body}</table>"


def _operation(node: Node) -> str:
    detail = node.attr("op") or node.attr("reduction")
    return f"{node.op} ({detail})" if detail else node.op


def _layout_table(layout: Layout) -> str:
    return _table(
        ("site", "rows", "columns"),
        ((block.site, f"{block.rows[0]}:{block.rows[1]}", f"{block.cols[0]}:{block.cols[1]}")
         for block in layout.blocks),
    )


def matrix_html(node: Node) -> str:
    """HTML describing the value of ``node``: shape, dtype, placement, sites; no data."""
    shape = " x ".join(map(str, node.shape)) if node.shape else "scalar"
    summary = _rows([("shape", shape), ("dtype", node.dtype),
                     ("partitioning", node.partitioning.value), ("operation", _operation(node))])
    html = f"<div><strong>fedla.Matrix</strong> (lazy){_TABLE}{summary}</table>"
    if node.layout is not None:
        html += f"<div>held at {len(node.layout.blocks)} site(s):</div>"
        html += _layout_table(node.layout)
    else:
        leaves = [leaf for leaf in unique_nodes([node]) if leaf.layout is not None]
        if leaves:
            html += f"<div>computed where its {len(leaves)} federated input(s) live:</div>"
            for leaf in leaves:
                html += _layout_table(leaf.layout)  # type: ignore[arg-type]
        else:
            html += "<div>local: computed in this process</div>"
    return html + "</div>"


def context_html(
    tenant: str, is_open: bool, workers: Sequence[tuple[str, str, dict[str, int]]]
) -> str:
    """HTML describing a Context: its tenant, and per worker its kind, state and traffic.

    ``workers`` holds ``(address, state, stats)`` with ``stats`` the calls, requests and bytes
    of ``Context.stats()`` for that site (empty before the first call).
    """
    summary = _rows([("tenant", tenant), ("state", "open" if is_open else "closed"),
                     ("workers", len(workers))])
    table = _table(
        ("worker", "state", "calls", "requests", "bytes sent", "bytes received"),
        ((address, state, stats.get("calls", 0), stats.get("requests", 0),
          stats.get("bytes_sent", 0), stats.get("bytes_received", 0))
         for address, state, stats in workers),
    )
    return f"<div><strong>fedla.Context</strong>{_TABLE}{summary}</table>{table}</div>"
