"""The narratives Datasette plugin: linked titles and the narrative index drawn as inline SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Request, Response
from markupsafe import Markup

FREQS = {"D": "daily", "W": "weekly", "M": "monthly"}
# Where a period ends, for finding the articles behind a peak.
PERIOD_END = {"D": "+1 day", "W": "+7 days", "M": "+1 month"}
# Views and canned queries whose `article_id` column should link to the article's row.
ARTICLE_LINK_COLUMNS = {"article_id"}
CHART_QUERY = "theme_index"
# The readable views serve.py creates (named here too: serve.py imports this module).
_VIEWS = ("article_overview", "theme_scores", "entity_overview", "mention_overview")


@dataclass(frozen=True)
class IndexPoint:
    period: str
    value: float | None
    smoothed: float | None


def _http_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Markup | None:
    """Titles link to the publisher's page; article ids in views link to the article's row."""
    keys = row.keys() if hasattr(row, "keys") else ()
    if column == "title" and "url" in keys and isinstance(value, str):
        url = _http_url(row["url"])
        if url:
            return Markup('<a href="{}" rel="nofollow noopener">{}</a>').format(url, value)
    if column in ARTICLE_LINK_COLUMNS and isinstance(value, int) and table in (None, *_VIEWS):
        href = datasette.urls.row(database, "articles", str(value))
        return Markup('<a href="{}">{}</a>').format(href, value)
    return None


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/-/narratives/chart\.svg$", chart_svg_route),
        (r"^/-/narratives/chart$", chart_page_route),
    ]


@hookimpl
def extra_template_vars(template: str, request: Request | None, datasette: Any) -> Any:
    """Above the rows of the `theme_index` canned query: the chart of what it lists."""
    if request is None or not template.startswith("query"):
        return {}
    if request.url_vars.get("table") != CHART_QUERY:
        return {}

    async def chart_vars() -> dict[str, Any]:
        database = request.url_vars.get("database")
        db = datasette.get_database(database)
        theme = request.args.get("theme") or ""
        freq = (request.args.get("freq") or "W").upper()
        if freq not in FREQS:
            return {}
        themes = await _themes(db)
        if theme not in themes:
            return {}
        points = await _index_points(db, theme, freq)
        svg = index_svg(points, title=f"{themes[theme]} ({FREQS[freq]})")
        return {"narratives_chart": svg}

    return chart_vars


async def _themes(db: Any) -> dict[str, str]:
    try:
        rows = await db.execute("SELECT id, name FROM themes ORDER BY rowid")
    except Exception:  # an untagged corpus has no themes table
        return {}
    return {row["id"]: row["name"] for row in rows}


async def _index_points(db: Any, theme: str, freq: str) -> list[IndexPoint]:
    rows = await db.execute(
        "SELECT period, value, smoothed FROM narrative_index WHERE theme = ? AND freq = ? "
        "ORDER BY period",
        [theme, freq],
    )
    return [IndexPoint(row["period"], row["value"], row["smoothed"]) for row in rows]


def _database(datasette: Any, request: Request) -> Any:
    name = request.args.get("db")
    if name:
        return datasette.get_database(name)
    names = [name for name in datasette.databases if name != "_internal"]
    return datasette.get_database(names[0])


async def chart_svg_route(request: Request, datasette: Any) -> Response:
    """`/-/narratives/chart.svg?theme=…&freq=W`: the index as an SVG image."""
    db = _database(datasette, request)
    themes = await _themes(db)
    theme = request.args.get("theme") or next(iter(themes), "")
    freq = (request.args.get("freq") or "W").upper()
    if theme not in themes or freq not in FREQS:
        return Response.text(f"unknown theme or freq (themes: {', '.join(themes)})", status=404)
    svg = index_svg(await _index_points(db, theme, freq), title=f"{themes[theme]} ({FREQS[freq]})")
    return Response(str(svg), content_type="image/svg+xml; charset=utf-8")


async def chart_page_route(request: Request, datasette: Any) -> Response:
    """`/-/narratives/chart?theme=…&freq=W`: the chart, its peaks and their strongest articles."""
    db = _database(datasette, request)
    themes = await _themes(db)
    theme = request.args.get("theme") or next(iter(themes), "")
    freq = (request.args.get("freq") or "W").upper()
    if freq not in FREQS:
        freq = "W"
    context: dict[str, Any] = {
        "database": db.name,
        "themes": themes,
        "theme": theme,
        "freq": freq,
        "freqs": FREQS,
        "svg": None,
        "peaks": [],
    }
    if theme in themes:
        points = await _index_points(db, theme, freq)
        context["svg"] = index_svg(points, title=f"{themes[theme]} ({FREQS[freq]})")
        context["peaks"] = await _peaks(db, theme, freq, points)
    html = await datasette.render_template("narratives_chart.html", context, request=request)
    return Response.html(html, status=200 if theme in themes else 404)


async def _peaks(db: Any, theme: str, freq: str, points: Sequence[IndexPoint]) -> list[dict]:
    """The five highest periods, each with the article that carries the theme most strongly."""
    top = sorted((p for p in points if p.value is not None), key=lambda p: -(p.value or 0))[:5]
    peaks = []
    for point in top:
        rows = await db.execute(
            "SELECT a.id, a.title, a.url, a.publisher, t.score FROM article_themes t "
            "JOIN articles a ON a.id = t.article_id WHERE t.theme = ? AND t.carries = 1 "
            "AND a.published >= ? AND a.published < date(?, ?) ORDER BY t.score DESC LIMIT 1",
            [theme, point.period, point.period, PERIOD_END[freq]],
        )
        article = dict(rows.first()) if rows.first() else None
        if article:
            article["url"] = _http_url(article["url"])
        peaks.append({"period": point.period, "value": point.value, "article": article})
    return peaks


def _ticks(top: float) -> list[float]:
    step = 10 ** math.floor(math.log10(max(top, 1) / 2))
    for multiple in (1, 2, 5, 10):
        if top / (step * multiple) <= 6:
            step *= multiple
            break
    return [i * step for i in range(int(top // step) + 1)]


def index_svg(
    points: Sequence[IndexPoint], *, title: str, width: int = 960, height: int = 360
) -> Markup:
    """The index (and its smoothed series) as an inline SVG line chart; gaps break the line.

    Every string that reaches the SVG is escaped: theme names come from a user's themes file.
    """
    left, right, top_pad, bottom = 56, 16, 36, 44
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    values = [v for p in points for v in (p.value, p.smoothed) if v is not None]
    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="narratives-chart" role="img" '
            'width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" '
            'font-size="12">'
        ).format(w=width, h=height),
        Markup("<title>{}</title>").format(title),
        Markup('<text x="{}" y="20" font-size="15" font-weight="bold">{}</text>').format(
            left, title
        ),
    ]
    if not values:
        parts.append(
            Markup('<text x="{}" y="{}">No index for this theme yet: {}</text>').format(
                left, top_pad + plot_h // 2, "run `narratives index`."
            )
        )
        parts.append(Markup("</svg>"))
        return Markup("").join(parts)
    y_max = max(*values, 100.0) * 1.08
    count = len(points)

    def x(i: int) -> float:
        return left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top_pad + plot_h * (1 - v / y_max)

    for tick in _ticks(y_max):
        parts.append(
            Markup(
                '<line x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                '<text x="{tx}" y="{ty:.1f}" text-anchor="end" fill="#555">{label}</text>'
            ).format(
                x1=left, x2=left + plot_w, y=y(tick), tx=left - 6, ty=y(tick) + 4, label=f"{tick:g}"
            )
        )
    parts.append(
        Markup(
            '<line x1="{}" x2="{}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-dasharray="4 3"/>'
        ).format(left, left + plot_w, y=y(100))
    )
    label_every = max(1, math.ceil(count / 10))
    for i, point in enumerate(points):
        if i % label_every == 0:
            parts.append(
                Markup('<text x="{:.1f}" y="{}" text-anchor="middle" fill="#555">{}</text>').format(
                    x(i), top_pad + plot_h + 18, point.period
                )
            )
    for series, colour, stroke in (("value", "#1f5fa8", 2), ("smoothed", "#d9822b", 1.5)):
        path, pen_down = [], False
        for i, point in enumerate(points):
            v = getattr(point, series)
            if v is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(i):.1f},{y(v):.1f}")
            pen_down = True
        if path:
            parts.append(
                Markup('<path d="{}" fill="none" stroke="{}" stroke-width="{}"/>').format(
                    " ".join(path), colour, stroke
                )
            )
    for i, point in enumerate(points):
        if point.value is not None:
            parts.append(
                Markup(
                    '<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="#1f5fa8">'
                    "<title>{}: {:.1f}</title></circle>"
                ).format(x(i), y(point.value), point.period, point.value)
            )
    parts.append(
        Markup('<text x="{}" y="20" fill="#1f5fa8">index (mean 100)</text>').format(
            left + plot_w - 220
        )
    )
    if any(p.smoothed is not None for p in points):
        parts.append(
            Markup('<text x="{}" y="20" fill="#d9822b">smoothed</text>').format(left + plot_w - 90)
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
