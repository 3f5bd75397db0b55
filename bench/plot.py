#!/usr/bin/env python3
"""Draws the figures of docs/benchmarks.md from what bench/run printed (SVG, no dependencies).

    bench/run > out.md
    bench/plot.py out.md [later.md ...] --out docs/img

Reads the summary rows ("| benchmark | kiln | alternative | ratio | target | met |"; a row of a
later file replaces the row of the same name) and the SFTP table, and writes:

  targets.svg    each target as "kiln's figure / target" (for "at least" targets, target / figure),
                 so 1.0 is the target and a bar that stops short of it is met
  sftp-runs.svg  the SFTP downloads in run order, kiln-agent against OpenSSH, which shows the
                 agent's JIT warm-up on its first downloads
"""
import argparse
import html
import os
import re
import sys

ROW = re.compile(r"^\| (.+?) \| (.+?) \| (.+?) \| (.+?) \| (<=|>=) ([\d.]+) ?(\S*) \| (yes|no) \|$")
SFTP = re.compile(r"^\| (one .+ file|\d+ files of .+) \| (kiln-agent|OpenSSH sshd) \| ([\d. ]+)\| [\d.]+ \|$")
NUMBER = re.compile(r"[\d.]+")


def read(paths):
    rows, sftp = {}, {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                m = ROW.match(line)
                if m:
                    name, kiln, _alt, ratio, op, limit, unit, met = m.groups()
                    value = float(ratio.rstrip("x")) if unit == "x" else float(NUMBER.search(kiln).group())
                    score = value / float(limit) if op == "<=" else float(limit) / value
                    figure = kiln if unit != "x" else ratio
                    target = f"{op} {limit}" + (f" {unit}" if unit not in ("", "x") else unit)
                    rows[name] = (score, met == "yes", f"{figure}, target {target}")
                m = SFTP.match(line)
                if m:
                    sftp.setdefault(m.group(1), {})[m.group(2)] = [float(x) for x in m.group(3).split()]
    return rows, sftp


def text(x, y, s, size=12, anchor="start", weight="normal", color="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{size}" '
            f'text-anchor="{anchor}" font-weight="{weight}" fill="{color}">{html.escape(s)}</text>')


def targets_svg(rows):
    label_w, bar_w, row_h, top = 430, 300, 22, 40
    cap = 3.0
    height = top + row_h * len(rows) + 30
    width = label_w + bar_w + 150
    scale = bar_w / cap
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           text(10, 20, "Each target: kiln's figure / target (for \"at least\" targets, target / figure); below 1 is met",
                13, weight="bold")]
    for i, (name, (score, met, shown)) in enumerate(rows.items()):
        y = top + i * row_h
        short = name if len(name) <= 68 else name[:65] + "..."
        out.append(text(label_w - 8, y + 15, short, 11, anchor="end"))
        w = min(score, cap) * scale
        color = "#2e7d32" if met else "#c62828"
        out.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>')
        more = "+" if score > cap else ""
        out.append(text(label_w + w + 5, y + 15, f"{score:.2f}{more}: {shown}", 11))
    x1 = label_w + scale
    out.append(f'<line x1="{x1:.1f}" y1="{top - 6}" x2="{x1:.1f}" y2="{top + row_h * len(rows)}" '
               'stroke="#222" stroke-dasharray="4 3"/>')
    out.append(text(x1, top + row_h * len(rows) + 16, "target (1.0)", 11, anchor="middle"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def sftp_svg(sftp):
    cases = list(sftp.items())
    panel_w, panel_h, left, top = 330, 220, 50, 45
    width = left + len(cases) * (panel_w + 40)
    height = top + panel_h + 60
    ymax = max(v for _, servers in cases for runs in servers.values() for v in runs)
    ymax = (int(ymax / 100) + 1) * 100
    colors = {"kiln-agent": "#c62828", "OpenSSH sshd": "#1565c0"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           text(10, 20, "SFTP downloads in run order (MB/s), one fresh agent and one sshd, alternating", 13,
                weight="bold")]
    for c, (case, servers) in enumerate(cases):
        x0 = left + c * (panel_w + 40)
        out.append(text(x0 + panel_w / 2, top - 8, case, 12, anchor="middle"))
        out.append(f'<rect x="{x0}" y="{top}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#999"/>')
        for tick in range(0, ymax + 1, 100):
            y = top + panel_h - tick / ymax * panel_h
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(text(x0 - 4, y + 4, str(tick), 10, anchor="end"))
        n = max(len(runs) for runs in servers.values())
        for server, runs in servers.items():
            pts = [(x0 + (i + 0.5) * panel_w / n, top + panel_h - v / ymax * panel_h) for i, v in enumerate(runs)]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colors.get(server, "#555")}" stroke-width="2"/>')
            for x, y in pts:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colors.get(server, "#555")}"/>')
        for i in range(n):
            out.append(text(x0 + (i + 0.5) * panel_w / n, top + panel_h + 14, f"run {i + 1}", 10, anchor="middle"))
    ly = top + panel_h + 38
    for k, (server, color) in enumerate(colors.items()):
        out.append(f'<rect x="{left + k * 150}" y="{ly - 9}" width="12" height="10" fill="{color}"/>')
        out.append(text(left + k * 150 + 18, ly, server, 11))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outputs", nargs="+", help="what bench/run printed; later files replace rows of earlier ones")
    ap.add_argument("--out", default="docs/img", help="directory for the SVG files (default docs/img)")
    a = ap.parse_args()
    rows, sftp = read(a.outputs)
    if not rows:
        sys.exit("plot.py: no summary rows (| name | kiln | alternative | ratio | target | met |) in " + ", ".join(a.outputs))
    os.makedirs(a.out, exist_ok=True)
    written = []
    with open(os.path.join(a.out, "targets.svg"), "w", encoding="utf-8") as f:
        f.write(targets_svg(rows))
    written.append("targets.svg")
    if sftp:
        with open(os.path.join(a.out, "sftp-runs.svg"), "w", encoding="utf-8") as f:
            f.write(sftp_svg(sftp))
        written.append("sftp-runs.svg")
    print("plot.py: wrote " + ", ".join(os.path.join(a.out, w) for w in written) + f" ({len(rows)} targets)")


if __name__ == "__main__":
    main()
