/*
 * flame.js - the flame graph (and icicle) renderer: a tree of weighted frames drawn on a
 * canvas, zoomable, searchable, with hit-testing for the tooltip. Knows nothing of the API:
 * app.js builds the trees (flame graph, sandwich, diff) and passes them here.
 *
 * Why a canvas: a flame graph of 50 000 nodes as DOM or SVG elements freezes a browser; on
 * a canvas only the nodes at least a tenth of a pixel wide are drawn, and hit-testing is a binary
 * search in the row under the pointer. Text is drawn with fillText: a profile's strings
 * never become markup.
 */
"use strict";

const FlameGraph = (() => {
  const ROW = 18;
  /* Narrower frames are not drawn: a tenth of a pixel still shows as a faint line, so a
   * wide flat profile never looks empty. */
  const MIN_WIDTH = 0.1;
  const TYPE_HUES = {
    native: [24, 75], kernel: [0, 65], jvm: [110, 45], go: [190, 60], v8js: [48, 75],
    python: [210, 55], cpython: [210, 55], php: [262, 45], ruby: [340, 55], perl: [290, 40],
    dotnet: [232, 50], beam: [160, 45], luajit: [140, 50], unknown: [0, 0],
  };

  function hash(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return h >>> 0;
  }

  /* The colour of a frame type, varied a little by name so neighbours stand apart. */
  function color(type, name) {
    const [hue, sat] = TYPE_HUES[type] || [hash(type || "") % 360, 35];
    const light = 58 + (hash(name || "") % 13) - 6;
    return `hsl(${hue}, ${sat}%, ${light}%)`;
  }

  function typeColor(type) {
    const [hue, sat] = TYPE_HUES[type] || [hash(type || "") % 360, 35];
    return `hsl(${hue}, ${sat}%, 58%)`;
  }

  /* A node: {name, type, self, total, children[], parent}. Children sorted by name, so the
   * layout is stable from one load to the next. */
  function sortChildren(node) {
    const stack = [node];
    while (stack.length) {
      const n = stack.pop();
      n.children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const c of n.children) stack.push(c);
    }
  }

  class View {
    constructor(canvas, opts) {
      this.canvas = canvas;
      this.opts = opts || {};
      this.root = null;
      this.zoomed = null;
      this.icicle = false;
      this.rows = [];
      canvas.addEventListener("mousemove", (e) => this.onMove(e));
      canvas.addEventListener("mouseleave", () => this.hideTip());
      canvas.addEventListener("click", (e) => {
        const n = this.hit(e);
        if (n && this.opts.onClick) this.opts.onClick(n);
      });
      /* the box shrinks when the window does or the text above it wraps to more lines, after
       * the drawing: keep the root row in sight then too */
      if (typeof ResizeObserver === "function") new ResizeObserver(() => this.pinRoot()).observe(canvas.parentElement);
    }

    /* A flame graph grows upwards from its root: its box is scrolled to the bottom, to show
     * the root row (an icicle's is at the top, where the box starts). */
    pinRoot() {
      if (this.root && !this.icicle) this.canvas.parentElement.scrollTop = this.canvas.parentElement.scrollHeight;
    }

    setTree(root) {
      this.root = root;
      this.zoomed = root;
      if (root) sortChildren(root);
    }

    zoom(node) {
      this.zoomed = node || this.root;
      this.draw();
    }

    ancestors(node) {
      const out = [];
      for (let n = node; n; n = n.parent) out.unshift(n);
      return out;
    }

    draw() {
      const c = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const width = Math.max(200, c.parentElement.clientWidth - 2);
      this.rows = [];
      const placed = [];   // [node, x, w, depth]
      if (this.root && this.zoomed && this.zoomed.total !== 0) {
        const path = this.ancestors(this.zoomed);
        path.forEach((n, d) => {
          placed.push([n, 0, width, d]);
        });
        const base = path.length - 1;
        const scale = width / Math.abs(this.zoomed.total);
        /* depth first, leftmost child first: each row comes out in x order, as hit() needs */
        const stack = [[this.zoomed, 0, base]];
        while (stack.length) {
          const [n, x, d] = stack.pop();
          if (n !== this.zoomed) placed.push([n, x, Math.abs(n.total) * scale, d]);
          let cx = x;
          const start = stack.length;
          for (const ch of n.children) {
            const w = Math.abs(ch.total) * scale;
            if (w >= MIN_WIDTH) stack.push([ch, cx, d + 1]);
            cx += w;
          }
          for (let i = start, j = stack.length - 1; i < j; i++, j--) [stack[i], stack[j]] = [stack[j], stack[i]];
        }
      }
      let depth = 0;
      for (const p of placed) depth = Math.max(depth, p[3]);
      const height = (placed.length ? depth + 1 : 1) * ROW + 2;
      c.width = Math.floor(width * dpr);
      c.height = Math.floor(height * dpr);
      c.style.width = width + "px";
      c.style.height = height + "px";
      const ctx = c.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      ctx.font = "12px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      for (const [n, x, w, d] of placed) {
        const y = this.icicle ? d * ROW : height - (d + 1) * ROW - 1;
        const fill = this.opts.colorOf ? this.opts.colorOf(n) : (n.color = n.color || color(n.type, n.name));
        ctx.fillStyle = fill;
        ctx.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW - 1);
        if (w > 28) {
          ctx.fillStyle = "#111";
          ctx.fillText(fit(ctx, n.name, w - 6), x + 3, y + ROW / 2);
        }
        (this.rows[d] = this.rows[d] || []).push([x, w, n, y]);
      }
      this.height = height;
      this.pinRoot();
    }

    hit(e) {
      const r = this.canvas.getBoundingClientRect();
      const x = e.clientX - r.left, y = e.clientY - r.top;
      for (const row of this.rows) {
        if (!row || !row.length || y < row[0][3] || y >= row[0][3] + ROW) continue;
        let lo = 0, hi = row.length - 1;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          const [rx, rw, n] = row[mid];
          if (x < rx) hi = mid - 1;
          else if (x >= rx + rw) lo = mid + 1;
          else return n;
        }
      }
      return null;
    }

    onMove(e) {
      const n = this.hit(e);
      const tip = document.getElementById("tooltip");
      if (!n || !this.opts.tooltip) return this.hideTip();
      tip.textContent = this.opts.tooltip(n).join("\n");
      tip.style.display = "block";
      const pad = 14;
      let left = e.clientX + pad, top = e.clientY + pad;
      const tw = tip.offsetWidth, th = tip.offsetHeight;
      if (left + tw > window.innerWidth) left = Math.max(0, e.clientX - tw - pad);
      if (top + th > window.innerHeight) top = Math.max(0, e.clientY - th - pad);
      tip.style.left = left + "px";
      tip.style.top = top + "px";
      this.canvas.style.cursor = "pointer";
    }

    hideTip() {
      document.getElementById("tooltip").style.display = "none";
      this.canvas.style.cursor = "default";
    }
  }

  /* The longest prefix of s that fits in w pixels, with an ellipsis when cut. */
  function fit(ctx, s, w) {
    if (ctx.measureText(s).width <= w) return s;
    let lo = 0, hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(s.slice(0, mid) + "…").width <= w) lo = mid;
      else hi = mid - 1;
    }
    return lo ? s.slice(0, lo) + "…" : "";
  }

  return { View, color, typeColor, ROW };
})();
