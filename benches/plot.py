#!/usr/bin/env python3
"""Draws the Measuring chapter's plots and tables from criterion's JSON output.

    CARGO_TARGET_DIR=target cargo bench --bench counters --bench server
    python3 benches/plot.py [CRITERION_DIR] [--out book/src/img] [--tables FILE.md]

CRITERION_DIR defaults to $CARGO_TARGET_DIR/criterion, else target/criterion. Only the Python
standard library is used: the SVG is written by hand. For every benchmark it reads
`new/benchmark.json` (the throughput: elements per iteration) and `new/estimates.json` (the
median time per iteration, in ns, and its 95% confidence interval), and turns them into
elements per second. Bars are the median, whiskers the confidence interval.

Writes `bench-counters.svg` and `bench-server.svg`, and prints the Markdown tables (throughput
and the server ratios) that the chapter shows; `--tables FILE` also writes them to FILE.
"""

import json
import os
import sys
from pathlib import Path

COUNTERS = ["mutex", "parking_lot", "atomic"]
THREADS = [1, 2, 4]
SERVERS = ["thread", "pool", "events", "bare", "tokio"]
LOADS = [("greet", 20), ("greet", 100), ("echo", 20), ("echo", 100)]
COLOURS = {
    "mutex": "#4e79a7", "parking_lot": "#f28e2b", "atomic": "#59a14f",
    "thread": "#4e79a7", "pool": "#76b7b2", "events": "#edc948", "bare": "#e15759",
    "tokio": "#b07aa1",
}


class Rate(float):
    """Elements per second (the median), carrying criterion's 95% confidence interval."""
    low = high = None


def rate(root, group, bench):
    """Elements per second from the median time per iteration, or None if not measured."""
    base = root / group / bench / "new"
    try:
        estimates = json.loads((base / "estimates.json").read_text())
        meta = json.loads((base / "benchmark.json").read_text())
    except (OSError, ValueError):
        return None
    elements = (meta.get("throughput") or {}).get("Elements")
    median = estimates["median"]
    if not elements or not median["point_estimate"]:
        return None
    result = Rate(elements / (median["point_estimate"] * 1e-9))
    interval = median.get("confidence_interval") or {}
    if interval.get("lower_bound") and interval.get("upper_bound"):
        # A longer time is a lower rate: the bounds swap.
        result.low = elements / (interval["upper_bound"] * 1e-9)
        result.high = elements / (interval["lower_bound"] * 1e-9)
    return result


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_max(value):
    """A round axis maximum at or above value, and its tick step."""
    if value <= 0:
        return 1.0, 0.25
    exp = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exp * 5:
            return step * exp * 5, step * exp
    return value, value / 5


def human(value):
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def bar_panel(x0, y0, w, h, title, unit, groups, series, values):
    """One bar chart: `groups` along x, one bar per `series` in each group; values[(g, s)]."""
    out = []
    top = max([max(v, v.high or v) for v in values.values() if v] or [1.0])
    ymax, step = nice_max(top)
    left, bottom, plot_h = x0 + 52, y0 + h - 34, h - 64
    plot_w = w - 62
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + 16}" text-anchor="middle" '
               f'font-weight="bold">{esc(title)}</text>')
    tick = 0.0
    while tick <= ymax + 1e-9:
        y = bottom - plot_h * tick / ymax
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{human(tick)}</text>')
        tick += step
    out.append(f'<text x="{x0 + 12}" y="{bottom - plot_h / 2}" font-size="11" '
               f'text-anchor="middle" transform="rotate(-90 {x0 + 12} '
               f'{bottom - plot_h / 2})">{esc(unit)}</text>')
    slot = plot_w / len(groups)
    bar_w = slot * 0.8 / len(series)
    for gi, group in enumerate(groups):
        gx = left + gi * slot + slot * 0.1
        for si, name in enumerate(series):
            value = values.get((group, name))
            if not value:
                continue
            bh = plot_h * value / ymax
            x = gx + si * bar_w
            out.append(f'<rect x="{x:.1f}" y="{bottom - bh:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{bh:.1f}" fill="{COLOURS.get(name, "#999")}">'
                       f'<title>{esc(name)} {esc(group)}: {value:,.0f} {esc(unit)}</title></rect>')
            mid = x + (bar_w - 2) / 2
            label_y = bottom - bh - 4
            if value.low and value.high:
                y_low = bottom - plot_h * value.low / ymax
                y_high = bottom - plot_h * value.high / ymax
                out.append(f'<path d="M{mid:.1f} {y_low:.1f}V{y_high:.1f}M{mid - 4:.1f} '
                           f'{y_low:.1f}h8M{mid - 4:.1f} {y_high:.1f}h8" stroke="#222" '
                           f'fill="none"/>')
                label_y = min(label_y, y_high - 4)
            out.append(f'<text x="{mid:.1f}" y="{label_y:.1f}" text-anchor="middle" '
                       f'font-size="10">{human(value)}</text>')
        out.append(f'<text x="{left + gi * slot + slot / 2:.1f}" y="{bottom + 16}" '
                   f'text-anchor="middle" font-size="12">{esc(group)}</text>')
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" '
               f'stroke="#333"/>')
    return out


def legend(x, y, names):
    out = []
    for i, name in enumerate(names):
        lx = x + i * 110
        out.append(f'<rect x="{lx}" y="{y - 10}" width="12" height="12" '
                   f'fill="{COLOURS.get(name, "#999")}"/>')
        out.append(f'<text x="{lx + 16}" y="{y}" font-size="12">{esc(name)}</text>')
    return out


def svg(width, height, body):
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">'
            f'<rect width="{width}" height="{height}" fill="white"/>')
    return head + "\n" + "\n".join(body) + "\n</svg>\n"


def main(argv):
    args = list(argv)
    out_dir, tables_file = Path("book/src/img"), None
    if "--out" in args:
        i = args.index("--out")
        out_dir = Path(args[i + 1])
        del args[i:i + 2]
    if "--tables" in args:
        i = args.index("--tables")
        tables_file = Path(args[i + 1])
        del args[i:i + 2]
    if args:
        root = Path(args[0])
    else:
        root = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
    if not root.is_dir():
        sys.exit(f"plot.py: no criterion output at {root}; run `cargo bench` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []

    counters = {(f"{t} thread" + ("s" if t > 1 else ""), c): rate(root, "counter", f"{c}/{t}")
                for c in COUNTERS for t in THREADS}
    if any(counters.values()):
        groups = [f"{t} thread" + ("s" if t > 1 else "") for t in THREADS]
        body = bar_panel(0, 0, 560, 300, "Client counter: connect + disconnect",
                         "clients/s", groups, COUNTERS, counters)
        body += legend(120, 318, COUNTERS)
        (out_dir / "bench-counters.svg").write_text(svg(560, 330, body))
        lines += ["| counter | 1 thread | 2 threads | 4 threads |", "|---|---:|---:|---:|"]
        for c in COUNTERS:
            cells = [counters[(g, c)] for g in groups]
            lines.append(f"| {c} | " + " | ".join(
                f"{v / 1e6:.1f} M/s" if v else "–" for v in cells) + " |")
        lines.append("")

    server = {}
    for mode, clients in LOADS:
        for s in SERVERS:
            server[(mode, clients, s)] = rate(root, f"server-{mode}-{clients}", s)
    if any(server.values()):
        body = []
        for i, (mode, clients) in enumerate(LOADS):
            values = {(f"{clients} clients", s): server[(mode, clients, s)] for s in SERVERS}
            unit = "connections/s" if mode == "greet" else "messages/s"
            x, y = (i % 2) * 380, (i // 2) * 280
            body += bar_panel(x, y, 370, 270, f"{mode}, {clients} clients", unit,
                              [f"{clients} clients"], SERVERS, values)
        body += legend(170, 578, SERVERS)
        (out_dir / "bench-server.svg").write_text(svg(760, 590, body))
        # Two tables, not one wide one: each fits the book's column.
        lines += ["| load | thread | pool | events | bare | tokio |",
                  "|---|---:|---:|---:|---:|---:|"]
        ratios = ["", "| load | thread/bare | pool/tokio | events/tokio | thread/tokio |",
                  "|---|---:|---:|---:|---:|"]
        for mode, clients in LOADS:
            t, p, e, b, k = (server[(mode, clients, s)] for s in SERVERS)
            if not all((t, p, e, b, k)):
                continue
            lines.append(f"| {mode} {clients} | {t:,.0f} | {p:,.0f} | {e:,.0f} | {b:,.0f} | "
                         f"{k:,.0f} |")
            ratios.append(f"| {mode} {clients} | {t / b:.2f} | {p / k:.2f} | {e / k:.2f} | "
                          f"{t / k:.2f} |")
        lines += ratios
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if tables_file:
        tables_file.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
