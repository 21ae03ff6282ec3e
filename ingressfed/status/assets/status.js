// The ingressfed status page. It reads the read API of the server that served it (relative URLs,
// the browser's own credentials) and renders with textContent/setAttribute only: no name from a
// Kubernetes object is ever parsed as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_SECONDS = 20;
  const LABEL_LIMIT = 40; // above this many markers, names show on hover only
  let doc = null;
  let receivedAt = 0;
  let gridKey = "";
  let whereShown = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  const x = (loc) => loc.lon + 180;
  const y = (loc) => 90 - loc.lat;

  function nowServer() {
    return doc ? doc.generatedAt + (Date.now() / 1000 - receivedAt) : Date.now() / 1000;
  }

  function age(t) {
    if (typeof t !== "number") return "–";
    const s = Math.max(0, Math.floor(nowServer() - t));
    if (s >= 172800) return Math.floor(s / 86400) + "d ago";
    if (s >= 7200) return Math.floor(s / 3600) + "h ago";
    if (s >= 60) return Math.floor(s / 60) + "m ago";
    return s + "s ago";
  }

  function clockTime(t) {
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }

  function hue(i) {
    return `hsl(${(i * 137.508) % 360}, 65%, 62%)`;
  }

  function setConnection(state, text) {
    const c = $("connection");
    c.dataset.state = state;
    c.textContent = text;
  }

  // ---------------------------------------------------------------- map
  function renderGrid(d) {
    const g = d.grid;
    const key = g ? JSON.stringify([g.step, g.cells, d.clusters.map((c) => c.name)]) : "";
    if (key === gridKey) return;
    gridKey = key;
    const layer = $("cells");
    layer.replaceChildren();
    if (!g) return;
    const index = new Map(d.clusters.map((c, i) => [c.name, i]));
    g.cells.forEach((name, i) => {
      if (name === null || !index.has(name)) return;
      const row = Math.floor(i / g.cols);
      const col = i % g.cols;
      const rect = svg("rect", {
        x: col * g.step, y: row * g.step, width: g.step, height: g.step,
        fill: hue(index.get(name)), "fill-opacity": 0.28, "data-cluster": name,
      });
      layer.appendChild(rect);
    });
  }

  function matches(item) {
    const q = $("filter").value.trim().toLowerCase();
    if (!q) return true;
    return [item.name, item.region, item.zone, item.status, item.health]
      .some((v) => typeof v === "string" && v.toLowerCase().includes(q));
  }

  function describe(item, kind) {
    const lines = [`${kind} ${item.name}`, `status: ${item.status || "–"} (${item.health || "unknown"})`];
    if (item.region) lines.push(`region: ${item.region}${item.zone ? " / " + item.zone : ""}`);
    for (const r of item.reasons || []) lines.push(r);
    if (typeof item.requestsPerSecond === "number") {
      const err = typeof item.errorRate === "number" ? ` · ${(item.errorRate * 100).toFixed(1)}% errors` : "";
      lines.push(`${item.requestsPerSecond.toFixed(1)} req/s${err}`);
    }
    lines.push(`last transition: ${age(item.lastTransition)}`);
    return lines.join("\n");
  }

  // One set of listeners on the map (not three per marker): the marker under the pointer is found
  // by its group's data-name, its text in `tips`, rebuilt with every render.
  const tips = new Map();

  function hover(node, text) {
    tips.set(node, text);
  }

  function followPointer() {
    const map = $("map");
    const tip = $("tooltip");
    map.addEventListener("mousemove", (e) => {
      const text = tips.get(e.target);
      if (text === undefined) { tip.hidden = true; return; }
      const box = $("map-panel").getBoundingClientRect();
      tip.textContent = text;
      tip.hidden = false;
      tip.style.left = (e.clientX - box.left + 12) + "px";
      tip.style.top = (e.clientY - box.top + 12) + "px";
    });
    map.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  function renderMarkers(d) {
    const labels = d.clusters.length + d.edges.length <= LABEL_LIMIT;
    tips.clear();
    const clusters = $("clusters");
    clusters.replaceChildren();
    for (const c of d.clusters) {
      if (!c.location) continue;
      const g = svg("g", { class: "cluster", "data-name": c.name, "data-health": c.health, opacity: matches(c) ? 1 : 0.2 });
      const dot = svg("circle", { class: "cluster-marker", cx: x(c.location), cy: y(c.location), r: 2.6, "data-health": c.health });
      const title = svg("title");
      title.textContent = `${c.name}: ${c.health}`;
      dot.appendChild(title);
      g.appendChild(dot);
      if (labels) {
        const t = svg("text", { class: "label", x: x(c.location) + 3.4, y: y(c.location) + 1.4 });
        t.textContent = c.name;
        g.appendChild(t);
      }
      hover(dot, describe(c, "cluster"));
      clusters.appendChild(g);
    }
    const edges = $("edges");
    edges.replaceChildren();
    const home = new Map(d.clusters.filter((c) => c.location).map((c) => [c.name, c.location]));
    for (const e of d.edges) {
      if (!e.location || typeof e.location.lat !== "number" || typeof e.location.lon !== "number") continue;
      let cx = x(e.location);
      let cy = y(e.location);
      const at = home.get(e.cluster);
      if (at && Math.abs(x(at) - cx) < 2 && Math.abs(y(at) - cy) < 2) {
        // An edge where its cluster is would hide under the cluster's dot: draw it beside, tethered.
        edges.appendChild(svg("line", { class: "tether", x1: x(at), y1: y(at), x2: cx + 3, y2: cy + 3.2 }));
        cx += 3;
        cy += 3.2;
      }
      const g = svg("g", { class: "edge", "data-name": e.name, "data-health": e.health || "unknown", opacity: matches(e) ? 1 : 0.2 });
      const mark = svg("rect", {
        class: "edge-marker", x: cx - 1.6, y: cy - 1.6, width: 3.2, height: 3.2,
        transform: `rotate(45 ${cx} ${cy})`, "data-health": e.health || "unknown",
      });
      g.appendChild(mark);
      hover(mark, describe(e, "edge"));
      edges.appendChild(g);
    }
  }

  // ---------------------------------------------------------------- tables
  function healthCell(item) {
    const td = el("td", { class: "health" });
    td.appendChild(el("span", { "data-health": item.health || "unknown" }, item.health || "unknown"));
    return td;
  }

  function renderTables(d) {
    const body = $("cluster-table").tBodies[0];
    body.replaceChildren();
    for (const c of d.clusters) {
      if (!matches(c)) continue;
      const tr = el("tr", { "data-name": c.name, "data-health": c.health });
      tr.appendChild(el("td", { class: "name" }, c.name));
      tr.appendChild(el("td", { class: "status" }, c.status));
      tr.appendChild(healthCell(c));
      tr.appendChild(el("td", { class: "reasons" }, (c.reasons || []).join("; ") || "–"));
      tr.appendChild(el("td", {}, age(c.lastTransition)));
      tr.appendChild(el("td", {}, c.region || "–"));
      tr.appendChild(el("td", {}, typeof c.requestsPerSecond === "number" ? c.requestsPerSecond.toFixed(1) : "–"));
      tr.appendChild(el("td", {}, typeof c.errorRate === "number" ? (c.errorRate * 100).toFixed(1) + "%" : "–"));
      body.appendChild(tr);
    }
    const hasEdges = d.edges.length > 0;
    $("edges-title").hidden = !hasEdges;
    $("edge-table").hidden = !hasEdges;
    const ebody = $("edge-table").tBodies[0];
    ebody.replaceChildren();
    for (const e of d.edges) {
      if (!matches(e)) continue;
      const tr = el("tr", { "data-name": e.name, "data-health": e.health || "unknown" });
      tr.appendChild(el("td", { class: "name" }, e.name));
      tr.appendChild(el("td", {}, e.status || "–"));
      tr.appendChild(healthCell(e));
      tr.appendChild(el("td", { class: "reasons" }, (e.reasons || []).join("; ") || "–"));
      tr.appendChild(el("td", {}, age(e.lastTransition)));
      tr.appendChild(el("td", {}, e.region || "–"));
      ebody.appendChild(tr);
    }
  }

  function renderEvents(d) {
    const list = $("events");
    list.replaceChildren();
    for (const e of d.events.slice(0, 100)) {
      const li = el("li", { class: e.warning ? "warning" : "normal", "data-kind": e.kind });
      const t = el("time", { datetime: new Date(e.time * 1000).toISOString() }, clockTime(e.time));
      li.append(t, el("span", { class: "kind" }, e.kind), el("span", { class: "message" }, e.message));
      list.appendChild(li);
    }
    if (!d.events.length) list.appendChild(el("li", {}, "nothing happened yet"));
  }

  function renderSummary(d) {
    $("role").textContent = d.role === "proxy" ? "proxy status" : "federation status";
    const counts = { healthy: 0, degraded: 0, unhealthy: 0 };
    for (const c of d.clusters) counts[c.health] = (counts[c.health] || 0) + 1;
    const parts = [`zone ${d.zone || "–"}`, `${d.clusters.length} clusters: ${counts.healthy} healthy, ${counts.degraded} degraded, ${counts.unhealthy} unhealthy`];
    if (d.edges.length) parts.push(`${d.edges.length} edges`);
    parts.push(`${d.counts.routes} routes`, `${d.counts.records} records`);
    if (d.feed) parts.push(`feed version ${d.feed.version}`);
    $("summary").textContent = parts.join(" · ");
    const select = $("where-host");
    const current = select.value;
    const wanted = JSON.stringify(d.hosts);
    if (select.dataset.hosts !== wanted) {
      select.dataset.hosts = wanted;
      select.replaceChildren(...d.hosts.map((h) => el("option", { value: h }, h)));
      if (d.hosts.includes(current)) select.value = current;
    }
  }

  function render() {
    if (!doc) return;
    renderSummary(doc);
    renderGrid(doc);
    renderMarkers(doc);
    renderTables(doc);
    renderEvents(doc);
    renderWhereOnMap();
  }

  // ---------------------------------------------------------------- where
  function renderWhereOnMap() {
    const client = $("client");
    const links = $("links");
    client.replaceChildren();
    links.replaceChildren();
    if (!whereShown || !whereShown.location || !doc) return;
    const loc = whereShown.location;
    client.appendChild(svg("circle", { cx: x(loc), cy: y(loc), r: 1.8 }));
    const chosen = whereShown.proxy && whereShown.proxy.chosen;
    const target = doc.clusters.find((c) => c.name === chosen);
    if (target && target.location) {
      links.appendChild(svg("line", { x1: x(loc), y1: y(loc), x2: x(target.location), y2: y(target.location) }));
    }
  }

  function showWhere(result) {
    const dl = $("where-result");
    dl.replaceChildren();
    const add = (field, label, value) => {
      dl.appendChild(el("dt", {}, label));
      dl.appendChild(el("dd", { "data-field": field }, value));
    };
    const loc = result.location;
    const place = [result.country, result.continent].filter(Boolean).join(", ");
    add("location", "location", loc ? `${loc.lat.toFixed(2)}, ${loc.lon.toFixed(2)}${place ? " (" + place + ")" : ""}` : "unknown (default order applies)");
    add("dns", `DNS answer for ${result.host} (${result.dns.source})`, result.dns.answer.join(", ") || "no records");
    if (result.proxy) {
      add("proxy", "proxy sends it to", result.proxy.chosen || "no healthy cluster (503)");
      add("order", "then, in order", result.proxy.order.join(" → "));
    } else {
      add("proxy", "proxy sends it to", `no route for ${result.host} (404)`);
    }
    whereShown = result;
    renderWhereOnMap();
  }

  async function ask(event) {
    event.preventDefault();
    const ip = $("where-ip").value.trim();
    const host = $("where-host").value;
    const dl = $("where-result");
    try {
      const resp = await fetch(`v1/status/where?ip=${encodeURIComponent(ip)}&host=${encodeURIComponent(host)}`, { cache: "no-store" });
      const body = await resp.json();
      if (!resp.ok) throw new Error(body.detail || `HTTP ${resp.status}`);
      showWhere(body);
    } catch (e) {
      whereShown = null;
      dl.replaceChildren(el("dd", { class: "error", "data-field": "error" }, String(e.message || e)));
      renderWhereOnMap();
    }
  }

  // ---------------------------------------------------------------- live
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function follow() {
    let version = null;
    for (;;) {
      const url = version === null ? "v1/status" : `v1/status?after=${version}&timeout=${POLL_SECONDS}`;
      try {
        const resp = await fetch(url, { cache: "no-store" });
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        doc = await resp.json();
        receivedAt = Date.now() / 1000;
        version = doc.version;
        render();
        setConnection("live", `live · updated ${new Date().toLocaleTimeString([], { hour12: false })}`);
      } catch (e) {
        setConnection("lost", `connection lost (${e.message || e}); retrying`);
        version = null;
        await sleep(2000);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("where-form").addEventListener("submit", ask);
    followPointer();
    $("filter").addEventListener("input", render);
    setInterval(() => { if (doc) { renderTables(doc); } }, 5000);
    follow();
  });
})();
