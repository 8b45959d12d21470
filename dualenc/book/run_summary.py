"""One run's metrics as a small HTML table, for the static and the live explorer."""
from __future__ import annotations

from ..runs.metric_registry import format_value, label_of, names


def run_summary_html(record, compact: bool = False) -> str:
    """A small HTML table of one run's metrics that the registry shows in the panel (for the
    explorers); `compact`: smaller type and padding, to sit under the accuracy bars in a book page."""

    rows = [(label_of(name), format_value(name, record.metrics[name]))
            for name in names(shown_in="panel") if name in record.metrics]
    cell = "padding:1px 6px" if compact else "padding:2px 8px"
    body = "".join(f"<tr><td style='{cell}'>{k}</td><td style='{cell};text-align:right'>{v}</td></tr>"
                   for k, v in rows)
    size = "font-size:0.8em;line-height:1.25;" if compact else ""
    return f"<table style='{size}border-collapse:collapse;margin:0'>{body}</table>"
