"""Open an HTML report in a real headless browser and check that its charts render.

A report can be well-formed text and still show nothing: an SVG with a broken ``viewBox``, marks
drawn outside the plot, an embedded image the browser cannot decode. This opens the page in a
headless Chromium (or Chrome), lets the browser lay it out, and asks the browser itself, from a
script added to a copy of the page, what it drew: for every ``<svg>`` chart its size on the page
and the number of data marks (paths, polylines, filled rectangles, circles, lines other than the grid)
whose box the browser measured as non-empty and inside the chart; for every ``<img>`` whether it decoded and its pixel
size. Optionally it also takes a screenshot of the whole page for a person to look at.

    python -m analysis.browser_check RUN_DIR/report.html [--screenshot page.png]

exits 0 when every chart drew marks and every image decoded, 1 when one did not, 2 when no
browser is found (set ``TWIN_BROWSER`` to a Chromium-family executable) or the file is missing.
No browser ships with the package: this is a check for a machine that has one.
"""

from __future__ import annotations

import argparse
import html as _html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# runs in the page after load: the browser's own measurements of every chart and image
_PROBE = """
<script>
window.addEventListener('load', () => {
  const marks = 'path,polyline,polygon,rect,circle,line,text';
  const out = {svgs: [], imgs: []};
  document.querySelectorAll('svg').forEach((s, i) => {
    const box = s.getBoundingClientRect();
    // the plot area: the chart's frame (its first unfilled rectangle), else the whole chart
    const frameEl = Array.from(s.querySelectorAll('rect')).find(r => getComputedStyle(r).fill === 'none');
    const area = frameEl ? frameEl.getBoundingClientRect() : box;
    const within = (r, b) => r.right >= b.left - 1 && r.left <= b.right + 1 && r.bottom >= b.top - 1 && r.top <= b.bottom + 1;
    let drawn = 0, inside = 0, data = 0, text = 0;
    s.querySelectorAll(marks).forEach(m => {
      const r = m.getBoundingClientRect();
      if (m.tagName === 'text') { if (m.textContent.trim()) text++; return; }
      if (m === frameEl || !(r.width > 0 || r.height > 0)) return;
      drawn++;
      if (!within(r, box)) return;
      inside++;
      // a data mark: inside the plot area, not a frame (an unfilled rectangle) or a grid line
      const st = getComputedStyle(m);
      const frame = m.tagName === 'rect' && st.fill === 'none';
      const grid = m.tagName === 'line' && st.stroke === 'rgb(238, 238, 238)';
      if (!frame && !grid && within(r, area) && r.top >= area.top - 1) data++;
    });
    out.svgs.push({index: i, label: s.getAttribute('aria-label') || '', width: box.width, height: box.height,
                   marks: drawn, inside: inside, data: data, text: text});
  });
  document.querySelectorAll('img').forEach((im, i) => {
    const box = im.getBoundingClientRect();
    out.imgs.push({index: i, alt: im.getAttribute('alt') || '', decoded: im.complete && im.naturalWidth > 0,
                   natural: [im.naturalWidth, im.naturalHeight], width: box.width, height: box.height});
  });
  const pre = document.createElement('pre');
  pre.id = 'twin-render-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


class NoBrowser(RuntimeError):
    pass


def find_browser() -> str:
    """The browser to use: ``TWIN_BROWSER`` if set, else the first Chromium-family executable on
    the PATH."""
    env = os.environ.get("TWIN_BROWSER")
    if env:
        if shutil.which(env) is None and not Path(env).is_file():
            raise NoBrowser(f"TWIN_BROWSER={env}: no such executable")
        return env
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise NoBrowser("no Chromium-family browser found (tried " + ", ".join(BROWSERS) + "; set TWIN_BROWSER)")


def _run(browser: str, args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    base = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--hide-scrollbars", "--allow-file-access-from-files"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout_s)


def check(path: str | Path, screenshot: str | Path | None = None, browser: str | None = None,
          timeout_s: float = 120.0) -> dict:
    """Render ``path`` and return the browser's measurements: ``{"svgs": [...], "imgs": [...],
    "failed": [what did not render]}``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    browser = browser or find_browser()
    with tempfile.TemporaryDirectory(prefix="twin-render-") as tmp:
        page = Path(tmp) / "page.html"
        at = text.lower().rfind("</body>")
        page.write_text(text[:at] + _PROBE + text[at:] if at >= 0 else text + _PROBE, encoding="utf-8")
        profile = ["--user-data-dir=" + str(Path(tmp) / "profile")]
        res = _run(browser, profile + ["--virtual-time-budget=10000", "--dump-dom", page.as_uri()], timeout_s)
        dom = res.stdout
        start = dom.find('id="twin-render-check"')
        if start < 0:
            raise RuntimeError(f"the browser did not run the page's check (exit {res.returncode}): "
                               + (res.stderr.strip().splitlines() or ["no output"])[-1])
        body = dom[dom.index(">", start) + 1:dom.index("</pre>", start)]
        out = json.loads(_html.unescape(body))
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            _run(browser, profile + ["--window-size=1280,4000", f"--screenshot={shot}", path.resolve().as_uri()],
                 timeout_s)
            out["screenshot"] = str(shot) if shot.exists() else None
    failed = []
    for s in out["svgs"]:
        if s["width"] <= 0 or s["height"] <= 0:
            failed.append(f"svg {s['index']} '{s['label']}': not laid out ({s['width']:.0f} x {s['height']:.0f} px)")
        elif s["data"] == 0:
            failed.append(f"svg {s['index']} '{s['label']}': no data drawn inside the chart (frame and grid only)")
    for im in out["imgs"]:
        if not im["decoded"] or im["width"] <= 0:
            failed.append(f"img {im['index']} '{im['alt']}': not decoded or not shown")
    out["failed"] = failed
    out["browser"] = browser
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.browser_check",
                                 description="Render an HTML report in a headless browser and check its charts.")
    ap.add_argument("report", help="the HTML file (a run's or a study's report.html)")
    ap.add_argument("--screenshot", help="also write a full-page PNG screenshot here")
    a = ap.parse_args(argv)
    if not Path(a.report).is_file():
        print(f"error: {a.report}: no such file", file=sys.stderr)
        return 2
    try:
        out = check(a.report, a.screenshot)
    except NoBrowser as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for s in out["svgs"]:
        print(f"svg {s['index']:>2} {s['width']:5.0f} x {s['height']:4.0f} px  {s['data']:5d} data marks  {s['label']}")
    for im in out["imgs"]:
        state = "decoded" if im["decoded"] else "NOT DECODED"
        print(f"img {im['index']:>2} {im['width']:5.0f} x {im['height']:4.0f} px  {state} "
              f"({im['natural'][0]} x {im['natural'][1]})  {im['alt']}")
    if out.get("screenshot"):
        print(f"screenshot: {out['screenshot']}")
    for f in out["failed"]:
        print(f"FAILED: {f}")
    print(f"{len(out['svgs'])} charts, {len(out['imgs'])} images, {len(out['failed'])} failed ({out['browser']})")
    return 1 if out["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
