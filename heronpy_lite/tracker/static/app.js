// The heronpy_lite web UI: plain JavaScript, no build step, no dependency
// (docs/decisions/0026-web-ui.md). It reads the tracker's JSON API (the same
// documents as /openapi.yaml describes) every REFRESH_MS and redraws.
// Everything a topology sends (names, exception messages, logs) is shown as
// text, never parsed as HTML.

const REFRESH_MS = 2000;
const INTERVAL_SECS = 10; // rates over the last 10 s: what happens now

let timer = null;
let selectedTask = null;

function el(tag, attrs = {}, ...children) {
  const node = tag === "svg" || attrs.svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "svg" || value === undefined || value === null) continue;
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  return el(tag, { ...attrs, svg: true }, ...children);
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fmt(value, digits = 1) {
  if (value === undefined || value === null) return "-";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
}

function when(seconds) {
  if (!seconds) return "-";
  const ago = Date.now() / 1000 - seconds;
  if (ago < 90) return `${Math.max(0, Math.round(ago))} s ago`;
  return new Date(seconds * 1000).toLocaleTimeString();
}

function saturationBar(row) {
  const busy = row.busy_ms_per_sec, bp = row.backpressured_ms_per_sec;
  if (busy === undefined) return el("span", { class: "muted", text: "-" });
  return el("span", { class: "bar", title: `busy ${fmt(busy, 0)}, backpressured ${fmt(bp, 0)}, idle ${fmt(row.idle_ms_per_sec, 0)} ms/s` },
    el("span", { style: `width:${busy / 10}%;background:var(--busy)` }),
    el("span", { style: `width:${bp / 10}%;background:var(--bp)` }));
}

// ------------------------------------------------------------------ the topology list

async function showList(main) {
  const states = await getJSON("/topologies/states");
  const [cluster] = Object.keys(states);
  document.getElementById("cluster").textContent = `cluster ${cluster}`;
  const rows = Object.values(states[cluster].default || {});
  main.replaceChildren(
    el("h1", { text: "Topologies" }),
    rows.length === 0
      ? el("p", { class: "muted", text: "No topologies are running. Submit one with heronpy-lite submit." })
      : el("table", { id: "topologies" },
          el("tr", {}, ...["name", "state", "containers", "instances", "submitted", "by"].map(
            (h, i) => el("th", { class: i === 0 || i === 5 ? "text" : undefined, text: h }))),
          ...rows.map((t) => el("tr", { "data-topology": t.topology },
            el("td", { class: "text" }, el("a", { href: `#/topology/${encodeURIComponent(t.topology)}`, text: t.topology })),
            el("td", {}, el("span", { class: `state ${t.state}`, text: t.state })),
            el("td", { text: String(t.containers) }),
            el("td", { text: String(t.instances) }),
            el("td", { text: t.submitted_at ? new Date(t.submitted_at * 1000).toLocaleString() : "-" }),
            el("td", { class: "text", text: t.submitted_by || "" })))),
  );
}

// ------------------------------------------------------------------ one topology

function layout(plan) {
  // layers: spouts at 0, each bolt one right of its furthest input
  const components = { ...plan.spouts, ...plan.bolts };
  const level = {};
  const visit = (name, seen = new Set()) => {
    if (name in level) return level[name];
    if (seen.has(name)) return 0; // a cycle cannot happen; never loop on one
    seen.add(name);
    const inputs = (components[name] || {}).inputs || [];
    level[name] = inputs.length ? 1 + Math.max(...inputs.map((i) => visit(i, seen))) : 0;
    return level[name];
  };
  Object.keys(components).forEach((name) => visit(name));
  const columns = [];
  for (const name of Object.keys(components).sort()) (columns[level[name]] ||= []).push(name);
  const W = 200, H = 78, GX = 90, GY = 26;
  const position = {};
  columns.forEach((names, x) => names.forEach((name, y) => {
    position[name] = { x: 20 + x * (W + GX), y: 20 + y * (H + GY) };
  }));
  const height = 40 + Math.max(...columns.map((c) => c.length)) * (H + GY);
  return { position, W, H, width: 40 + columns.length * (W + GX) - GX, height };
}

function dag(summary) {
  const { position, W, H, width, height } = layout(summary.logical_plan);
  const culprits = summary.backpressure.culprits || {};
  const paused = new Set(summary.backpressure.paused || []);
  const root = svg("svg", { class: "dag", id: "dag", width, height, viewBox: `0 0 ${width} ${height}` });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#868e96" }))));
  for (const [source, target] of summary.logical_plan.edges) {
    const a = position[source], b = position[target];
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}` }));
  }
  for (const [name, p] of Object.entries(position)) {
    const c = summary.components[name] || {};
    const busy = c.busy_ms_per_sec || 0, bp = c.backpressured_ms_per_sec || 0;
    const culprit = name in culprits;
    // colour: white (idle) to the busy colour, by the busiest instance's busy share
    const heat = Math.min(1, busy / 1000);
    const fill = `rgba(217, 72, 15, ${(0.08 + 0.6 * heat).toFixed(3)})`;
    const rate = c.spout ? c.emitted_per_sec : c.executed_per_sec;
    const node = svg("g", {
      class: `node${culprit ? " culprit" : ""}`,
      "data-component": name,
      "data-culprit": culprit ? "true" : "false",
      "data-busy": busy.toFixed(0),
      "data-backpressured": bp.toFixed(0),
      "data-rate": rate === undefined ? "" : String(rate),
      transform: `translate(${p.x},${p.y})`,
    },
      svg("rect", { class: "frame", width: W, height: H, rx: 6, style: `fill:${fill}` }),
      svg("text", { class: "name", x: 10, y: 18 }, `${name} ×${c.par ?? "?"}`),
      svg("text", { class: "rate", x: 10, y: 36 },
        c.spout ? `emitted ${fmt(c.emitted_per_sec)}/s` : `executed ${fmt(c.executed_per_sec)}/s`),
      svg("text", { x: 10, y: 52 }, `busy ${fmt(busy, 0)} · bp ${fmt(bp, 0)} ms/s`),
      culprit ? svg("text", { class: "flag", x: W - 10, y: 18, "text-anchor": "end" }, "culprit") : null,
      !culprit && paused.has(name) ? svg("text", { class: "muted", x: W - 10, y: 18, "text-anchor": "end" }, "paused") : null,
      // busy | backpressured | idle, as a bar along the bottom
      svg("rect", { x: 0, y: H - 10, width: W, height: 10, fill: "var(--idle)" }),
      svg("rect", { x: 0, y: H - 10, width: (W * busy) / 1000, height: 10, fill: "var(--busy)" }),
      svg("rect", { x: (W * busy) / 1000, y: H - 10, width: (W * bp) / 1000, height: 10, fill: "var(--bp)" }),
    );
    root.append(node);
  }
  return root;
}

function componentsTable(summary) {
  const columns = [
    ["emitted/s", "emitted_per_sec", 1], ["executed/s", "executed_per_sec", 1],
    ["acked/s", "acked_per_sec", 1], ["failed/s", "failed_per_sec", 1],
    ["execute ms", "execute_latency_ms", 3], ["complete ms", "complete_latency_ms", 3],
    ["pending", "pending", 0], ["timed out", "timed_out", 0], ["failed", "failed", 0],
    ["dropped", "dropped", 0], ["exceptions", "exceptions", 0],
  ];
  return el("table", { id: "components" },
    el("tr", {}, el("th", { class: "text", text: "component" }), el("th", { text: "running" }),
      ...columns.map(([h]) => el("th", { text: h })), el("th", { class: "text", text: "busy / backpressured" })),
    ...Object.values(summary.components).map((c) => el("tr", { "data-component": c.name },
      el("td", { class: "text", text: `${c.name}${c.spout ? " (spout)" : ""}` }),
      el("td", { text: `${c.running}/${c.par}` }),
      ...columns.map(([, key, digits]) => el("td", { class: key, text: fmt(c[key], digits) })),
      el("td", { class: "text" }, saturationBar(c)))));
}

function instancesTable(summary, name) {
  return el("table", { id: "instances" },
    el("tr", {}, ...["task", "instance", "container", "pid", "state", "restarts", "emitted/s", "executed/s", "pending", "busy / backpressured", "last error"].map(
      (h) => el("th", { class: ["instance", "state", "last error", "busy / backpressured"].includes(h) ? "text" : undefined, text: h }))),
    ...Object.values(summary.instances).map((i) => el("tr", {
      class: `clickable${selectedTask === i.task_id ? " selected" : ""}`,
      "data-task": String(i.task_id),
      title: "show the tail of its log",
      onclick: () => { selectedTask = i.task_id; refresh(); },
    },
      el("td", { text: String(i.task_id) }),
      el("td", { class: "text", text: `${i.component}[${i.index}]` }),
      el("td", { text: String(i.container) }),
      el("td", { text: String(i.pid ?? "-") }),
      el("td", { class: "text", text: i.state || "unknown" }),
      el("td", { text: String(i.restarts ?? 0) }),
      el("td", { text: fmt(i.emitted_per_sec) }),
      el("td", { text: fmt(i.executed_per_sec) }),
      el("td", { text: fmt(i.pending, 0) }),
      el("td", { class: "text" }, saturationBar(i)),
      el("td", { class: "text", text: i.error || "" }))));
}

function exceptionsTable(list) {
  if (!list.length) return el("p", { id: "exceptions", class: "muted", text: "No exceptions in user code." });
  return el("table", { id: "exceptions" },
    el("tr", {}, ...["component", "task", "in", "type", "count", "last", "message"].map(
      (h) => el("th", { class: ["component", "in", "type", "message"].includes(h) ? "text" : undefined, text: h }))),
    ...list.map((e) => el("tr", { "data-component": e.component, "data-type": e.type },
      el("td", { class: "text", text: e.component }),
      el("td", { text: String(e.task_id) }),
      el("td", { class: "text", text: `${e.where}()` }),
      el("td", { class: "text", text: e.type }),
      el("td", { text: fmt(e.count, 0) }),
      el("td", { text: when(e.last) }),
      el("td", { class: "text" }, el("details", { "data-key": `${e.component}|${e.task_id}|${e.where}|${e.type}` }, el("summary", { text: e.message || "(no message)" }), el("pre", { text: e.traceback }))))));
}

function autoscaleList(decisions) {
  // newest first: when, what changed, why, and the metrics that led to it
  return el("ul", { id: "autoscale" }, ...decisions.slice().reverse().map((d) => el("li", {
    text: `${new Date(d.wall * 1000).toLocaleTimeString()}: ${d.component} ${d.old} \u2192 ${d.new}: ${d.reason}` +
      ` (${Object.entries(d.metrics || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")})`,
  })));
}

async function logTail(name, summary) {
  const i = summary.instances[selectedTask];
  if (!i) return el("p", { class: "muted", text: "Click an instance to see the tail of its log." });
  const file = `instance-${i.component}-${i.task_id}.log`;
  try {
    const slice = await getJSON(`/topologies/container/filedata?topology=${encodeURIComponent(name)}&path=${encodeURIComponent(file)}&offset=-1&length=16384`);
    return el("div", {}, el("p", { class: "muted", text: `${file}, last ${slice.length} bytes` }), el("pre", { id: "log", text: slice.data }));
  } catch (error) {
    return el("p", { class: "muted", text: `${file}: ${error.message}` });
  }
}

async function control(name, action, summary) {
  const what = {
    activate: `Activate ${name}? Its spouts start calling next_tuple again.`,
    deactivate: `Deactivate ${name}? Its spouts stop calling next_tuple; tuples in flight drain.`,
    restart: `Restart every container of ${name}? Its processes are stopped and started again.`,
    kill: `Kill ${name}? Every process stops and its state is removed.`,
  }[action];
  if (!window.confirm(what)) return;
  const message = document.getElementById("message");
  message.textContent = `${action}…`;
  try {
    const response = await fetch(`/topologies/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ topology: name }),
    });
    const body = await response.json();
    message.textContent = response.ok ? body.message : `${action} failed: ${body.error}`;
  } catch (error) {
    message.textContent = `${action} failed: ${error.message}`;
  }
  if (action === "kill") { location.hash = "#/"; return; }
  refresh();
}

async function showTopology(main, name) {
  const q = `topology=${encodeURIComponent(name)}&interval=${INTERVAL_SECS}`;
  const [summary, exceptions] = await Promise.all([
    getJSON(`/topologies/summary?${q}`),
    getJSON(`/topologies/exceptions?${q}`),
  ]);
  document.getElementById("cluster").textContent = `cluster ${summary.cluster}`;
  const previous = document.getElementById("message");
  const message = el("span", { id: "message", class: "muted", text: previous ? previous.textContent : "" });
  const button = (action, label, danger) => el("button", {
    id: action, class: danger ? "danger" : undefined,
    onclick: () => control(name, action, summary),
    ...(summary.controls ? {} : { disabled: "disabled", title: "control needs a tracker on loopback" }),
  }, label);
  const bp = summary.backpressure;
  const culprits = Object.keys(bp.culprits || {});
  const log = await logTail(name, summary);
  main.replaceChildren(...[
    el("h1", {}, `${name} `, el("span", { id: "state", class: `state ${summary.state}`, text: summary.state }),
      el("span", { class: "controls" },
        summary.state === "PAUSED" ? button("activate", "Activate") : button("deactivate", "Deactivate"),
        button("restart", "Restart"), button("kill", "Kill", true)),
      message),
    el("p", { class: "muted", text: `Rates over the last ${fmt(summary.window)} s (refreshed every ${REFRESH_MS / 1000} s); busy/backpressured: ms per second of each component's busiest instance.` }),
    summary.problems.length
      ? el("ul", { class: "problems", id: "problems" }, ...summary.problems.map((p) => el("li", { text: p })))
      : null,
    dag(summary),
    el("div", { class: "legend" }, "Each bar: ",
      el("span", { class: "swatch", style: "background:var(--busy)" }), "busy",
      el("span", { class: "swatch", style: "background:var(--bp)" }), "backpressured",
      el("span", { class: "swatch", style: "background:var(--idle)" }), "idle",
      el("span", { id: "backpressure" },
        bp.strategy ? `  ·  backpressure (${bp.strategy}): ${culprits.length ? `culprit ${culprits.join(", ")}` : "none now"}` : "")),
    el("h2", { text: "Components" }), componentsTable(summary),
    el("h2", { text: "Instances" }), instancesTable(summary, name),
    (summary.autoscale || []).length ? el("h2", { text: "Autoscaling" }) : null,
    (summary.autoscale || []).length ? autoscaleList(summary.autoscale) : null,
    el("h2", { text: "Exceptions" }), exceptionsTable(exceptions),
    el("h2", { text: "Log" }), log,
  ].filter((child) => child !== null));
  return summary;
}

// ------------------------------------------------------------------ routing and refresh

async function refresh() {
  clearTimeout(timer);
  const main = document.getElementById("app");
  // tracebacks opened stay open across refreshes
  const open = new Set([...document.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  const route = location.hash.replace(/^#\/?/, "").split("/");
  try {
    if (route[0] === "topology" && route[1]) await showTopology(main, decodeURIComponent(route[1]));
    else await showList(main);
    document.querySelectorAll("details").forEach((d) => { if (open.has(d.dataset.key)) d.open = true; });
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    main.replaceChildren(el("p", { id: "error", text: `Cannot show this page: ${error.message}` }), el("p", {}, el("a", { href: "#/", text: "All topologies" })));
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

window.addEventListener("hashchange", () => { selectedTask = null; refresh(); });
refresh();
