#!/usr/bin/env python3
"""Draw spec/img/chord-pathlen.svg from `ip2p-sim chord --experiment pathlen --json` (stdin).
No dependencies: writes the SVG by hand."""
import json, math, sys

rows = [json.loads(l) for l in sys.stdin if l.strip()]
W, H, L, R, T, B = 640, 400, 60, 20, 30, 50
xs = [math.log2(r["nodes"]) for r in rows]
x0, x1, y0, y1 = min(xs) - 0.5, max(xs) + 0.5, 0, max(r["outcomes"]["hops"]["p99"] for r in rows) + 1
sx = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
sy = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="18" text-anchor="middle" font-size="14">Chord lookup path length (ip2p-sim, 10^4 lookups per N)</text>']
for y in range(0, int(y1) + 1, 2):
    out.append(f'<line x1="{L}" x2="{W-R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L-6}" y="{sy(y)+4:.1f}" text-anchor="end">{y}</text>')
for x in range(int(min(xs)), int(max(xs)) + 1):
    out.append(f'<text x="{sx(x):.1f}" y="{H-B+16}" text-anchor="middle">2^{x}</text>')
out.append(f'<line x1="{L}" x2="{W-R}" y1="{H-B}" y2="{H-B}" stroke="black"/>')
out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H-B}" stroke="black"/>')
out.append(f'<text x="{W/2}" y="{H-12}" text-anchor="middle">number of nodes N</text>')
out.append(f'<text x="16" y="{H/2}" text-anchor="middle" transform="rotate(-90 16 {H/2})">hops (nodes asked)</text>')
# 1/2 log2 N
out.append(f'<line x1="{sx(x0):.1f}" y1="{sy(x0/2):.1f}" x2="{sx(x1):.1f}" y2="{sy(x1/2):.1f}" stroke="#c33" stroke-dasharray="6,4"/>')
pts = []
for x, r in zip(xs, rows):
    h = r["outcomes"]["hops"]
    out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{sy(h["p1"]):.1f}" y2="{sy(h["p99"]):.1f}" stroke="#36c"/>')
    for p in (h["p1"], h["p99"]):
        out.append(f'<line x1="{sx(x)-4:.1f}" x2="{sx(x)+4:.1f}" y1="{sy(p):.1f}" y2="{sy(p):.1f}" stroke="#36c"/>')
    pts.append(f'{sx(x):.1f},{sy(h["mean"]):.1f}')
    out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(h["mean"]):.1f}" r="3" fill="#36c"/>')
out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#36c"/>')
out.append(f'<text x="{L+10}" y="{T+16}" fill="#36c">mean, bars: 1st and 99th percentiles</text>')
out.append(f'<text x="{L+10}" y="{T+32}" fill="#c33">dashed: ½·log2 N (the paper\'s mean)</text>')
out.append('</svg>')
print("\n".join(out))
