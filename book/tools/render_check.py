#!/usr/bin/env python3
"""Renders every chapter of the book in headless Chromium and reports what does not fit.

    python3 book/tools/render_check.py                 # 1280 px and 412 px, fails on 1280 px
    python3 book/tools/render_check.py --widths 412    # one width
    python3 book/tools/render_check.py --fail-on 1280,412

It builds the book with `mdbook build` into a temporary directory, adds
`book/tools/render_check.js` to each chapter page of that copy, serves the copy on 127.0.0.1, and
opens each chapter at each width with `chromium --headless --dump-dom`. The script measures the
laid-out page and reports, per chapter:

* tables and code blocks whose content is wider than their box (part of it hides behind a
  scroll bar),
* a page wider than the window,
* SVG images with text outside their viewBox (cut off), or text drawn smaller than 9 px.

Exit code 1 when anything is reported at a width listed in --fail-on (default: 1280, the
desktop width the book is written for). At 412 px, a phone, long code lines scroll by design;
the report is there to be read.

Needs mdbook 0.5.4 and Chromium (`apt-get install chromium`, or set CHROMIUM=/path). CI does
not run this: `tests/book.rs` checks cheap proxies of the same things (line widths of included
code, SVG text inside its viewBox) on every `cargo test`. Only the Python standard library is
used.
"""

import argparse
import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
MEASURE_JS = Path(__file__).resolve().with_name("render_check.js")
RESULT = re.compile(r'<pre id="render-check-result">(.*?)</pre>', re.S)


def chapters(src):
    """Chapter files in SUMMARY.md order, as the .html names mdBook gives them."""
    summary = (src / "SUMMARY.md").read_text()
    names = re.findall(r"\]\(([^)]+\.md)\)", summary)
    return [n[:-3] + ".html" for n in names]


def build(dest):
    out = subprocess.run(["mdbook", "build", str(BOOK), "-d", str(dest)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"mdbook build failed:\n{out.stdout}{out.stderr}")


# A desktop Chromium window has a minimum width (about 500 px), so a phone is an iframe of the
# width under test; media queries and layout inside it see that width.
FRAME = """<!DOCTYPE html>
<html><body style="margin:0">
<iframe id="page" style="border:0; width:{width}px; height:900px" src="{page}"></iframe>
</body></html>
"""


def inject(dest, pages):
    shutil.copy(MEASURE_JS, dest / "render-check.js")
    for page in pages:
        path = dest / page
        text = path.read_text()
        tag = '<script src="render-check.js"></script>'
        path.write_text(text.replace("</body>", tag + "\n</body>", 1))


def serve(directory):
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def chromium():
    for candidate in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"]:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    sys.exit("render_check.py: no Chromium found (apt-get install chromium, or set CHROMIUM)")


def render(browser, url, width, profile):
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--window-size={max(width, 1280)},1000", "--virtual-time-budget=15000", "--dump-dom", url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    m = RESULT.search(out.stdout)
    if not m:
        return {"error": "no result from the page (Chromium said: "
                         + out.stderr.strip()[-300:] + ")"}
    return json.loads(html.unescape(m.group(1)))


def describe(item):
    if "content" in item and "box" in item:
        return f"{item['what']} ({item['content']} px of content in {item['box']} px)"
    return item["what"]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="1280,412")
    parser.add_argument("--fail-on", default="1280")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    fail_on = {int(w) for w in args.fail_on.split(",") if w}
    browser = chromium()

    with tempfile.TemporaryDirectory(prefix="render-check-") as tmp:
        dest = Path(tmp) / "book"
        build(dest)
        pages = chapters(BOOK / "src")
        inject(dest, pages)
        server = serve(dest)
        port = server.server_address[1]
        failed = False
        try:
            for width in widths:
                total = 0
                print(f"== {width} px")
                for page in pages:
                    frame = f"render-check-{width}-{page}"
                    (dest / frame).write_text(FRAME.format(width=width, page=page))
                    with tempfile.TemporaryDirectory(prefix="render-check-profile-") as profile:
                        result = render(browser, f"http://127.0.0.1:{port}/{frame}", width,
                                        profile)
                    if "error" not in result and result.get("width") != width:
                        result = {"error": f"the page was {result.get('width')} px wide, "
                                           f"not {width}"}
                    if "error" in result:
                        print(f"{page}: ERROR {result['error']}")
                        total += 1
                        continue
                    for item in result["found"]:
                        print(f"{page}: {item['kind']}: {describe(item)}")
                        total += 1
                print(f"== {width} px: {total} problem(s) in {len(pages)} chapters\n")
                if total and width in fail_on:
                    failed = True
        finally:
            server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
