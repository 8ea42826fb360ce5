// swarmrank dashboard: plain DOM + SVG, no dependencies, nothing fetched from elsewhere.
"use strict";
const PALETTE = ["#4fb3ff", "#f5a623", "#3ecf8e", "#c77dff", "#ff6b9a", "#9ad14b", "#5de0e6", "#ffd166"];
const SVG = "http://www.w3.org/2000/svg";
const MAX_ROUNDS = 20;
let modelOf = {};

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}
const short = (id) => (id || "").slice(0, 8);
const pct = (x) => (100 * x).toFixed(0);

// In a private swarm the API wants a client API key: open the page as /#key=YOUR_KEY (the fragment
// never reaches the server's logs); it is sent as "Authorization: Bearer".
const KEY = new URLSearchParams(location.hash.slice(1)).get("key") || "";
const HEADERS = KEY ? { Authorization: `Bearer ${KEY}` } : {};

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store", headers: HEADERS });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function bar(value, color) {
  return el("span", {}, el("span", { class: "bar" }, el("i", { style: `width:${pct(value)}%;background:${color}` })),
            el("span", { class: "mono", text: value.toFixed(3) }));
}

function sparkline(history) {
  const w = 150, h = 34, svg = el("svg:svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "spark" });
  svg.append(el("svg:rect", { x: 0, y: 0, width: w, height: h, fill: "#121920" }));
  if (history.length) {
    const t0 = history[0][0], t1 = history[history.length - 1][0], span = Math.max(t1 - t0, 1e-9);
    const x = (t) => history.length === 1 ? w / 2 : 2 + (w - 4) * (t - t0) / span;
    const y = (v) => h - 2 - (h - 4) * Math.max(0, Math.min(1, v));
    [[1, "#4fb3ff"], [2, "#f5a623"]].forEach(([i, color]) => {
      const pts = history.map((p) => `${x(p[0]).toFixed(1)},${y(p[i]).toFixed(1)}`);
      if (history.length === 1) pts.push(`${(w / 2 + 1).toFixed(1)},${y(history[0][i]).toFixed(1)}`);
      svg.append(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
    });
  }
  svg.append(el("svg:title", { text: "generator (blue) and judge (orange) reputation since the coordinator started" }));
  return svg;
}

async function refreshNodes() {
  const nodes = await getJSON("/api/nodes");
  modelOf = Object.fromEntries(nodes.map((n) => [n.node_id, n.model]));
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren(...nodes.map((n) => el("tr", {},
    el("td", { class: "mono", title: `${n.node_id} at ${n.address}`, text: short(n.node_id) }),
    el("td", { text: n.models.join(", ") }),
    el("td", { text: n.role.replaceAll("_", " ") }),
    el("td", { class: `status-${n.status}`, text: n.status }),
    el("td", {}, bar(n.generator, "var(--gen)")),
    el("td", {}, bar(n.judge, "var(--judge)")),
    el("td", { text: String(n.rounds) }),
    el("td", {}, sparkline(n.history)))));
  document.getElementById("node-count").textContent =
    `${nodes.filter((n) => n.status === "healthy").length} healthy of ${nodes.length}`;
}

async function refreshLedger() {
  const l = await getJSON("/api/ledger");
  const pill = document.getElementById("ledger");
  pill.textContent = l.verified ? `ledger verified: ${l.entries} entries, head #${l.head_seq} ${l.head_hash.slice(0, 12)}…`
                                : `ledger NOT verified: ${l.problem}`;
  pill.className = "pill " + (l.verified ? "on" : "bad");
  pill.title = `head hash ${l.head_hash}\ncoordinator key ${l.coordinator_key}`;
}

function comparisonGraph(r) {
  const w = 300, h = 250, cx = w / 2, cy = h / 2 - 8, radius = 88;
  const ids = r.ranking.map((c) => c.candidate_id).sort();
  const pos = {};
  ids.forEach((id, i) => {
    const a = -Math.PI / 2 + 2 * Math.PI * i / ids.length;
    pos[id] = [cx + radius * Math.cos(a), cy + radius * Math.sin(a)];
  });
  const judges = [...new Set(r.judgments.map((j) => j.judge_node_id))].sort();
  const color = (j) => PALETTE[judges.indexOf(j) % PALETTE.length];
  const svg = el("svg:svg", { viewBox: `0 0 ${w} ${h}` });
  const defs = el("svg:defs");
  judges.forEach((j, i) => defs.append(el("svg:marker", { id: `arrow-${r.round_id}-${i}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: color(j) }))));
  svg.append(defs);
  const seen = {};
  for (const j of r.judgments) {  // an edge per verdict, bent so both orders and several judges stay visible
    const [a, b] = [j.a, j.b].sort(), key = a + b;
    const k = (seen[key] = (seen[key] || 0) + 1);
    const [x1, y1] = pos[j.a] || [cx, cy], [x2, y2] = pos[j.b] || [cx, cy];
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2, dx = x2 - x1, dy = y2 - y1, len = Math.hypot(dx, dy) || 1;
    const bend = (k % 2 ? 1 : -1) * 12 * Math.ceil(k / 2) * (j.a < j.b ? 1 : -1);
    const qx = mx - dy / len * bend, qy = my + dx / len * bend;
    const shrink = (x, y, tx, ty) => { const d = Math.hypot(tx - x, ty - y) || 1; return [x + (tx - x) * 17 / d, y + (ty - y) * 17 / d]; };
    let [sx, sy] = shrink(x1, y1, qx, qy), [ex, ey] = shrink(x2, y2, qx, qy);
    const attrs = { d: "", fill: "none", stroke: color(j.judge_node_id), "stroke-width": 1.6, opacity: 0.9 };
    if (j.preference === "a") [sx, sy, ex, ey] = [ex, ey, sx, sy];  // arrow points at the preferred answer
    attrs.d = `M${sx.toFixed(1)},${sy.toFixed(1)} Q${qx.toFixed(1)},${qy.toFixed(1)} ${ex.toFixed(1)},${ey.toFixed(1)}`;
    if (j.preference === "tie") attrs["stroke-dasharray"] = "4 3";
    else attrs["marker-end"] = `url(#arrow-${r.round_id}-${judges.indexOf(j.judge_node_id)})`;
    const path = el("svg:path", attrs);
    path.append(el("svg:title", { text: `judge ${short(j.judge_node_id)} (${modelOf[j.judge_node_id] || "?"}): ` +
      `${j.a} vs ${j.b} → ${j.preference === "tie" ? "tie" : (j.preference === "a" ? j.a : j.b)}` }));
    svg.append(path);
  }
  const winner = r.winner.candidate_id;
  for (const c of r.ranking) {
    const [x, y] = pos[c.candidate_id];
    const g = el("svg:g");
    g.append(el("svg:circle", { cx: x, cy: y, r: 15, fill: c.candidate_id === winner ? "#1f5f45" : "#22303d",
                                 stroke: c.candidate_id === winner ? "#3ecf8e" : "#5a6b7d", "stroke-width": 2 }));
    g.append(el("svg:text", { x, y: y + 4, "text-anchor": "middle", fill: "#dfe6ee", "font-size": 11, text: c.candidate_id }));
    g.append(el("svg:text", { x, y: y + (y < cy - 1 ? -21 : 30), "text-anchor": "middle", fill: "#8b98a8", "font-size": 10,
                               text: `${c.model.slice(0, 18)} #${c.rank}` }));
    g.append(el("svg:title", { text: `${c.candidate_id} by ${short(c.node_id)} (${c.model}), strength ${c.strength.toFixed(2)}` }));
    svg.append(g);
  }
  const legend = el("div", { class: "legend" }, `arrows point at the preferred answer, dashed: tie · judges: `);
  judges.forEach((j) => legend.append(el("span", { style: `color:${color(j)}`, text: `■ ${short(j)} ` })));
  return el("div", { class: "graph" }, svg, legend);
}

function roundCard(r, fresh) {
  const when = new Date(r.created_unix * 1000).toLocaleTimeString();
  const winner = r.ranking.find((c) => c.candidate_id === r.winner.candidate_id) || r.ranking[0];
  const rows = r.ranking.map((c) => el("tr", {},
    el("td", { text: `#${c.rank}` }), el("td", { text: c.candidate_id }), el("td", { text: c.model }),
    el("td", { class: "mono", text: short(c.node_id) }), el("td", { class: "mono", text: c.strength.toFixed(2) }),
    el("td", { text: (r.texts[c.candidate_id] || "").slice(0, 80) })));
  const left = el("div", {},
    el("div", { class: "q", text: r.question }),
    el("div", { class: "a", text: r.answer }),
    el("div", { class: "meta", text: `${when} · winner ${winner ? winner.model : "?"} (${short(r.winner.node_id)}) · ` +
      `confidence ${(r.confidence * 100).toFixed(0)}% · ${r.ranking.length} candidates · ${r.judgments.length} verdicts by ` +
      `${r.judges.length} judges · ${r.elapsed_seconds.toFixed(2)} s · round ${short(r.round_id)}` }),
    el("table", { class: "ranking" }, ...rows));
  const card = el("article", { class: "round" + (fresh ? " fresh" : ""), "data-round": r.round_id }, left, comparisonGraph(r));
  return card;
}

function addRound(r, fresh) {
  const box = document.getElementById("rounds");
  if (box.querySelector(`[data-round="${r.round_id}"]`)) return;
  box.querySelector(".empty")?.remove();
  box.prepend(roundCard(r, fresh));
  while (box.children.length > MAX_ROUNDS) box.lastChild.remove();
  document.getElementById("round-count").textContent = `${box.children.length} shown`;
}

// Server-sent events read with fetch (EventSource cannot send an Authorization header); reconnects.
async function follow(onEvent) {
  const live = document.getElementById("live");
  for (;;) {
    try {
      const r = await fetch("/api/events", { headers: HEADERS, cache: "no-store" });
      if (!r.ok || !r.body) throw new Error(`/api/events: HTTP ${r.status}`);
      live.textContent = "live"; live.className = "pill on";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          let kind = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) await onEvent(kind, data);
        }
      }
    } catch (e) { console.warn(e); }
    live.textContent = "reconnecting…"; live.className = "pill off";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function start() {
  await refreshNodes().catch(console.error);
  const rounds = await getJSON("/api/rounds").catch(() => []);
  rounds.reverse().forEach((r) => addRound(r, false));
  refreshLedger().catch(console.error);
  follow(async (kind, data) => {
    if (kind !== "round") return;
    await refreshNodes().catch(console.error);
    addRound(JSON.parse(data), true);
    refreshLedger().catch(console.error);
  });
  setInterval(() => refreshNodes().catch(console.error), 5000);  // health changes without rounds too
}
start();
