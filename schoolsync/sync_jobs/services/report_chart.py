"""The weekly report's chart: orders, paid orders and conversion per day, as a small PNG.

Drawn with matplotlib's Agg backend on a ``Figure`` of its own (no pyplot, no display, no global
state), so that it is safe in a worker thread.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from schoolsync.reconciliation.metrics import OrderMetrics

SIZE_IN = (6.4, 3.6)
DPI = 100


def weekly_chart(title: str, days: Sequence[tuple[str, OrderMetrics]]) -> bytes:
    """A PNG: bars of orders received and paid per day, the conversion (%) as a line on a
    second axis (a day without orders taken into work has no point)."""
    labels = [day[5:] for day, _ in days]  # MM-DD
    received = [m.received for _, m in days]
    paid = [m.paid for _, m in days]
    conversion = [m.conversion.value for _, m in days]
    figure = Figure(figsize=SIZE_IN, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(days)))
    axes.bar([p - 0.2 for p in positions], received, width=0.4, label="Заказы")
    axes.bar([p + 0.2 for p in positions], paid, width=0.4, label="Оплачено")
    axes.set_xticks(positions, labels)
    axes.set_ylabel("заказов")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    share = axes.twinx()
    share.plot(
        positions,
        [c if c is not None else float("nan") for c in conversion],
        color="tab:red",
        marker="o",
        label="Конверсия, %",
    )
    share.set_ylim(0, 105)
    share.set_ylabel("%")
    handles = axes.get_legend_handles_labels()
    more = share.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize="small")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
