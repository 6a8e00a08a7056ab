"""A plain line chart drawn on the server as SVG geometry (no JavaScript, no CDN): the rates page uses it."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rates.models import rate_as_text


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: str
    y_max: str
    y_min: str
    x_first: date
    x_last: date
    count: int


def line_chart(series: list[tuple[date, Decimal]], *, width: int = 720, height: int = 260) -> LineChart | None:
    """Pixel positions of a polyline for (day, value) points, with the axes' end labels; None for no points.

    Values only become floats here, as screen coordinates; the labels are the exact Decimals.
    """
    if not series:
        return None
    left, right, top, bottom = 90, width - 20, 20, height - 40
    first, last = series[0][0], series[-1][0]
    low, high = min(value for _, value in series), max(value for _, value in series)
    days = max((last - first).days, 1)
    spread = (high - low) or Decimal(1)
    coordinates = []
    for day, value in series:
        x = left + (right - left) * (day - first).days / days
        y = bottom - (bottom - top) * float((value - low) / spread)
        coordinates.append(f"{x:.1f},{y:.1f}")
    return LineChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=" ".join(coordinates),
        y_max=rate_as_text(high),
        y_min=rate_as_text(low),
        x_first=first,
        x_last=last,
        count=len(series),
    )
