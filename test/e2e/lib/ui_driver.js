/*
 * ui_driver.js - drives the web UI in headless Chromium (puppeteer-core) for ui_browser.py
 * and prints what it saw as one JSON object; ui_browser.py holds the expectations.
 *
 * Usage: node ui_driver.js CONFIG_JSON   (base URL, chromium path, screenshot dir, the
 * lazybackend binary and gRPC address for the live tail, the payload to send, the time
 * window to select, the names to look for).
 */
"use strict";

const { execFileSync } = require("child_process");
const path = require("path");
const puppeteer = require(path.join(process.env.NODE_PATH_PUPPETEER, "puppeteer-core"));

const cfg = JSON.parse(process.argv[2]);
const seen = { errors: [], dialogs: [], csp: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const SLOW = cfg.slow || 1;   /* a sanitized server answers slower: bounds stretch, counts do not */

async function ready(page, view, timeout = 15000 * SLOW) {
  await page.waitForFunction((v) => document.body.dataset.ready === v, { timeout }, view);
}

/* Navigates to a view (a fresh load), waits for its data. */
async function open(page, hash) {
  await page.evaluate(() => delete document.body.dataset.ready);
  await page.goto(cfg.base + "/#" + hash, { waitUntil: "load" });
  const view = new URLSearchParams(hash).get("view") || "flame";
  await ready(page, view);
}

async function rerender(page, view, act) {
  await page.evaluate(() => delete document.body.dataset.ready);
  await act();
  await ready(page, view);
}

/* Whether the flame graph's root row lies inside its box and inside the window (waited
 * for: the box is laid out and scrolled after a resize), at each size `shots` takes. */
async function rootInSight(page) {
  return page.waitForFunction(() => {
    const box = flame.canvas.parentElement.getBoundingClientRect();
    const top = flame.canvas.getBoundingClientRect().top + flame.height - FlameGraph.ROW - 1;
    return top >= box.top && top + FlameGraph.ROW - 1 <= box.bottom && box.bottom <= window.innerHeight;
  }, { timeout: 5000 }).then(() => true, () => false);
}

async function shots(page, name, rootSeen) {
  for (const [w, h] of [[1400, 900], [800, 600]]) {
    await page.setViewport({ width: w, height: h });
    await page.evaluate(() => window.dispatchEvent(new Event("resize")));
    await sleep(300);
    if (rootSeen) rootSeen[`${w}x${h}`] = await rootInSight(page);
    await page.screenshot({ path: path.join(cfg.shots, `${name}-${w}x${h}.png`) });
  }
  await page.setViewport({ width: 1400, height: 900 });
  await page.evaluate(() => window.dispatchEvent(new Event("resize")));
  await sleep(200);
}

/* Where to point at the frame named `name` (wider than 4 px) in the flame graph, its row
 * scrolled into its box first; null when it is not drawn. */
async function frameAt(page, name) {
  return page.evaluate((name) => {
    for (const row of flame.rows) for (const [x, w, n, y] of row || [])
      if (n.name === name && w > 4) {
        const box = flame.canvas.parentElement;
        if (y < box.scrollTop || y + FlameGraph.ROW > box.scrollTop + box.clientHeight)
          box.scrollTop = y - box.clientHeight / 2;
        const r = flame.canvas.getBoundingClientRect();
        return { x: r.left + x + w / 2, y: r.top + y + 8, w };
      }
    return null;
  }, name);
}

const topRows = (page) => page.$$eval("#top-table tbody tr", (trs) =>
  trs.map((tr) => [...tr.cells].slice(0, 6).map((td) => td.textContent)));

async function main() {
  const browser = await puppeteer.launch({
    executablePath: cfg.chromium, headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const out = {};
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
    page.on("pageerror", (e) => seen.errors.push(String(e)));
    page.on("dialog", async (d) => { seen.dialogs.push(d.message()); await d.dismiss(); });
    /* the page-side hook: anything injected would set window.__xss or open a dialog */
    await page.evaluateOnNewDocument(() => {
      window.__xss = 0;
      document.addEventListener("securitypolicyviolation", (e) => {
        window.__csp = (window.__csp || []).concat(e.violatedDirective + " " + e.blockedURI);
      });
    });

    /* flame graph: total, click to zoom, search */
    await open(page, "view=flame");
    out.flame = await page.evaluate(() => ({ status: document.getElementById("status").textContent,
                                             root: flame.root.total }));
    const target = await frameAt(page, cfg.zoom_name);
    out.zoom = { found: !!target };
    if (target) {
      await page.mouse.move(target.x, target.y);
      out.zoom.tooltip = await page.$eval("#tooltip", (t) => t.textContent);
      await page.mouse.click(target.x, target.y);
      await sleep(200);
      out.zoom.after = await page.evaluate((name) => {
        let width = 0;
        for (const row of flame.rows) for (const [, w, n] of row || []) if (n === flame.zoomed) width = w;
        return { zoomed: flame.zoomed.name, width, canvas: parseFloat(flame.canvas.style.width),
                 crumbs: [...document.querySelectorAll("#crumbs button")].map((b) => b.textContent),
                 hash: location.hash };
      }, cfg.zoom_name);
    }
    out.root_seen = {};
    await shots(page, "flame-zoomed", out.root_seen.zoomed = {});
    await page.click("#crumbs button");   /* back to the root */
    /* a native frame's tooltip: its mapping and build id */
    const native = await frameAt(page, cfg.native_name);
    if (native) {
      await page.mouse.move(native.x, native.y);
      out.native_tooltip = await page.$eval("#tooltip", (t) => t.textContent);
    }
    /* icicle: the root row moves from the bottom to the top, the URL keeps it */
    const rootY = () => page.evaluate(() => flame.rows[0][0][3]);
    out.icicle = { flame_root_y: await rootY() };
    await page.click("#icicle");
    out.icicle.icicle_root_y = await rootY();
    out.icicle.hash = await page.evaluate(() => location.hash);
    await page.click("#icicle");
    await page.type("#search", cfg.search);
    await sleep(300);
    out.search = await page.$eval("#search-info", (e) => e.textContent);
    await shots(page, "flame-search");

    /* top functions; a row's click focuses the flame graph */
    await open(page, "view=top");
    out.top = await topRows(page);
    await shots(page, "top");
    await rerender(page, "flame", () => page.click("#top-table tbody tr"));
    out.top_click = await page.evaluate(() => ({ hash: location.hash, search: document.getElementById("search").value,
                                                 info: document.getElementById("search-info").textContent }));

    /* a filter: executable. The field waits 300 ms after a key before it filters: on a busy
     * machine a pause between two keys renders a prefix first, so wait for the render of the
     * whole name (in the URL), not for the first render */
    await open(page, "view=top");
    await page.type("#f-executable", cfg.executable);
    await page.waitForFunction((v) => new URLSearchParams(location.hash.slice(1)).get("executable") === v &&
                                      document.body.dataset.ready === "top", { timeout: 15000 * SLOW }, cfg.executable);
    out.filtered = { status: await page.$eval("#status", (e) => e.textContent), rows: await topRows(page) };

    /* time window: drag over the timeline */
    await open(page, "view=top");
    const box = await page.$eval("#timeline", (c) => {
      const r = c.getBoundingClientRect();
      return { left: r.left, top: r.top, width: r.width, height: r.height };
    });
    const tl = await page.evaluate(() => ({ first: timeline.first, last: timeline.last }));
    const xAt = (t) => box.left + ((t - tl.first) / (tl.last - tl.first)) * box.width;
    await rerender(page, "top", async () => {
      await page.mouse.move(xAt(cfg.window[0]) + 1, box.top + 20);
      await page.mouse.down();
      await page.mouse.move(xAt(cfg.window[1]) - 1, box.top + 20, { steps: 5 });
      await page.mouse.up();
    });
    out.window = { hash: await page.evaluate(() => location.hash), status: await page.$eval("#status", (e) => e.textContent),
                   rows: await topRows(page), text: await page.$eval("#window-text", (e) => e.textContent) };
    await shots(page, "top-window");

    /* a flame graph of 50,001 nodes: loaded whole, drawn without freezing */
    const t0 = Date.now();
    await open(page, "view=flame&container=big");
    const loadMs = Date.now() - t0;
    out.big = await page.evaluate(() => {
      let nodes = 0;
      const stack = [flame.root];
      while (stack.length) {
        const n = stack.pop();
        nodes++;
        stack.push(...n.children);
      }
      let best = Infinity;   /* the least of three draws: a busy machine only adds time */
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        flame.draw();
        best = Math.min(best, performance.now() - t);
      }
      return { nodes, draw_ms: best, truncated: /tiny nodes/.test(document.getElementById("status").textContent) ? 1 : 0 };
    });
    out.big.load_ms = loadMs;
    await shots(page, "flame-big", out.root_seen.big = {});

    /* the other views, each screenshotted */
    await open(page, "view=groups");
    out.groups = await page.$$eval("#g-thread tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
    out.containers = await page.$$eval("#g-container tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
    await shots(page, "executables");
    /* a click on an executable filters every view by it */
    const row = await page.evaluateHandle((name) => [...document.querySelectorAll("#g-executable tbody tr")]
      .find((tr) => tr.cells[0].textContent === name), cfg.executable);
    await rerender(page, "groups", () => row.asElement().click());
    out.group_click = { hash: await page.evaluate(() => location.hash),
                        executables: await page.$$eval("#g-executable tbody tr td:first-child", (t) => t.map((x) => x.textContent)),
                        threads: await page.$$eval("#g-thread tbody tr", (t) => t.map((x) => [x.cells[0].textContent, x.cells[1].textContent])) };
    await open(page, "view=sandwich&fn=" + encodeURIComponent(cfg.sandwich));
    out.sandwich = await page.evaluate(() => ({ callers: sandwichViews.callers.root.total,
                                                callees: sandwichViews.callees.root.total }));
    await shots(page, "sandwich");
    await open(page, "view=diff&base=" + encodeURIComponent("from=" + cfg.window[0] + "&to=" + cfg.window[1]));
    out.diff = await page.$eval("#diff-info", (e) => e.textContent);
    await shots(page, "diff");

    /* the live tail: a request sent after the page loaded appears */
    await open(page, "view=live");
    await page.waitForFunction(() => document.getElementById("live-state").textContent.startsWith("live:"), { timeout: 10000 * SLOW });
    const before = await page.$$eval("#live-table tbody tr", (r) => r.length);
    execFileSync(cfg.lb, ["send", "--to", cfg.grpc, cfg.payload], { stdio: "ignore" });
    await page.waitForFunction((n) => document.querySelectorAll("#live-table tbody tr").length > n, { timeout: 10000 * SLOW }, before);
    out.live = await page.$eval("#live-table tbody tr", (tr) => [...tr.cells].map((c) => c.textContent));
    await shots(page, "requests");

    /* the hostile names: shown verbatim, nothing ran */
    await open(page, "view=top&q=" + encodeURIComponent(cfg.hostile_filter));
    out.hostile_top = (await topRows(page)).map((r) => r[5]);
    await open(page, "view=groups");
    out.hostile_groups = await page.$$eval("#view-groups td", (tds) => tds.map((t) => t.textContent));
    await open(page, "view=flame&search=" + encodeURIComponent(cfg.hostile_filter));
    out.hostile_flame = await page.evaluate(() => {
      const names = [];
      const stack = [flame.root];
      while (stack.length) {
        const n = stack.pop();
        names.push(n.name);
        stack.push(...n.children);
      }
      return names;
    });
    await open(page, "view=live");
    out.hostile_live = await page.$$eval("#live-table td", (tds) => tds.map((t) => t.textContent));
    out.xss = await page.evaluate(() => window.__xss);
    out.imgs = await page.evaluate(() => document.querySelectorAll("img, script:not([src])").length);
    out.csp = await page.evaluate(() => window.__csp || []);
  } finally {
    await browser.close();
  }
  out.errors = seen.errors;
  out.dialogs = seen.dialogs;
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e && e.stack || e), errors: seen.errors }) + "\n");
  process.exit(1);
});
