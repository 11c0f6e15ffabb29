// Measures one rendered chapter for book/tools/render_check.py.
//
// render_check.py adds this script to a copy of each built chapter and loads the page in headless
// Chromium. When the page has laid out, the script measures it and writes its findings as JSON
// into <pre id="render-check-result">, which Chromium's --dump-dom hands back to the Python side.
// Nothing here runs in the published book.
//
// What it reports, all as the reader would see it at this window width:
//   * a table or code block whose content is wider than its box (scrollWidth > clientWidth), so
//     part of it hides behind a scroll bar;
//   * the page itself being wider than the window;
//   * in each SVG image: a <text> whose box (getBBox) leaves the viewBox, so it is cut off, and
//     text whose rendered size is below MIN_FONT_PX (font size × the image's scale).
"use strict";

const MIN_FONT_PX = 9;

function short(text, n) {
  text = (text || "").replace(/\s+/g, " ").trim();
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

// The longest line of a code block, so the report says which line does not fit.
function longestLine(text) {
  let best = "";
  for (const line of (text || "").split("\n")) {
    if (line.length > best.length) best = line;
  }
  return best;
}

function overflows(el) {
  // One pixel of slack: sub-pixel layout can round either way.
  return el.scrollWidth > el.clientWidth + 1;
}

function measureBoxes(found) {
  const main = document.querySelector("main") || document.body;
  let n = 0;
  for (const table of main.querySelectorAll("table")) {
    n += 1;
    // mdBook wraps tables in a scrolling div; either one may be the box that overflows.
    const box = table.closest(".table-wrapper") || table.parentElement;
    const header = short(table.querySelector("tr") && table.querySelector("tr").textContent, 60);
    if (overflows(box) || table.offsetWidth > box.clientWidth + 1) {
      found.push({
        kind: "table",
        what: `table ${n} (${header})`,
        content: Math.max(box.scrollWidth, table.offsetWidth),
        box: box.clientWidth,
      });
    }
  }
  n = 0;
  for (const pre of main.querySelectorAll("pre")) {
    n += 1;
    const code = pre.querySelector("code") || pre;
    const el = overflows(code) ? code : pre;
    if (overflows(el)) {
      const line = longestLine(code.textContent);
      found.push({
        kind: "code",
        what: `code block ${n}, longest line ${line.length} columns: ${short(line, 70)}`,
        content: el.scrollWidth,
        box: el.clientWidth,
      });
    }
  }
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth + 1) {
    found.push({ kind: "page", what: "the page is wider than the window",
                 content: root.scrollWidth, box: window.innerWidth });
  }
}

// The box of `el` in the viewBox's units: getBBox() is in the element's own coordinates, before
// its `transform` (a rotated axis label), so its corners are mapped through to the root.
function inRootUnits(svg, el) {
  const b = el.getBBox();
  const m = svg.getScreenCTM().inverse().multiply(el.getScreenCTM());
  const xs = [];
  const ys = [];
  for (const [x, y] of [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height],
                        [b.x + b.width, b.y + b.height]]) {
    const p = new DOMPoint(x, y).matrixTransform(m);
    xs.push(p.x);
    ys.push(p.y);
  }
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

// An SVG <img> cannot be inspected from the page, so the image is fetched and laid out inline,
// off screen, at the width the <img> has on screen; then each <text> is measured in the image's
// own coordinates.
async function measureSvg(img, found) {
  const shown = img.getBoundingClientRect().width;
  const name = img.getAttribute("src");
  let source;
  try {
    source = await (await fetch(img.src)).text();
  } catch (e) {
    found.push({ kind: "svg", what: `${name}: could not fetch (${e})` });
    return;
  }
  const doc = new DOMParser().parseFromString(source, "image/svg+xml");
  const svg = document.importNode(doc.documentElement, true);
  const vb = svg.viewBox && svg.viewBox.baseVal;
  if (!vb || !vb.width) {
    found.push({ kind: "svg", what: `${name}: no viewBox, so it cannot scale to the column` });
    return;
  }
  const holder = document.createElement("div");
  holder.style.cssText = `position:absolute; left:-20000px; top:0; width:${shown}px`;
  svg.setAttribute("width", String(shown));
  svg.setAttribute("height", String((shown * vb.height) / vb.width));
  holder.appendChild(svg);
  document.body.appendChild(holder);
  const scale = shown / vb.width;
  let smallest = Infinity;
  let smallestText = "";
  for (const text of svg.querySelectorAll("text")) {
    const box = inRootUnits(svg, text);
    const label = short(text.textContent, 50);
    const out =
      box.x < vb.x - 1 || box.y < vb.y - 1 ||
      box.x + box.width > vb.x + vb.width + 1 || box.y + box.height > vb.y + vb.height + 1;
    if (out && box.width > 0) {
      found.push({
        kind: "svg-text-outside",
        what: `${name}: "${label}" spans x ${box.x.toFixed(0)}..${(box.x + box.width).toFixed(0)},` +
          ` y ${box.y.toFixed(0)}..${(box.y + box.height).toFixed(0)}` +
          ` in a viewBox ${vb.width} × ${vb.height}`,
      });
    }
    const px = parseFloat(getComputedStyle(text).fontSize) * scale;
    if (px < smallest) {
      smallest = px;
      smallestText = label;
    }
  }
  if (smallest < MIN_FONT_PX) {
    found.push({
      kind: "svg-small-text",
      what: `${name}: text as small as ${smallest.toFixed(1)} px ("${smallestText}"),` +
        ` the image drawn at ${shown.toFixed(0)} of ${vb.width} units`,
    });
  }
  holder.remove();
}

async function measure() {
  if (document.fonts && document.fonts.ready) await document.fonts.ready;
  const found = [];
  measureBoxes(found);
  const main = document.querySelector("main") || document.body;
  for (const img of main.querySelectorAll('img[src$=".svg"]')) {
    // mdBook 0.5 puts a second, hidden copy of every image in the page for its click-to-zoom;
    // only the one on screen counts.
    if (img.closest(".img-wrapper") || img.getBoundingClientRect().width === 0) continue;
    await measureSvg(img, found);
  }
  report({ width: window.innerWidth, found });
}

// render_check.py loads the chapter in an iframe of the width under test (a desktop Chromium
// window cannot be made as narrow as a phone), so the result goes to the page around it, which
// is the document --dump-dom prints.
function report(value) {
  const target = window.parent && window.parent !== window ? window.parent.document : document;
  const result = target.createElement("pre");
  result.id = "render-check-result";
  result.textContent = JSON.stringify(value);
  target.body.appendChild(result);
}

window.addEventListener("load", () => {
  measure().catch((e) => report({ error: String(e) }));
});
