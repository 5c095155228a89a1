// The live mesh page (`GET /` on the metrics listener, docs/operations.md "The mesh page"): one
// self-contained HTML document, CSS and script inline, that draws the topology and refreshes it
// every 2 s from `GET /topology.json` (MeshPageData). It fetches nothing else, so it works on a
// host with no route to anywhere. Kept as a Swift string, not a package resource, because the
// installed binary is one file (docs/operations.md "Install"): there is no bundle beside it.
//
// Throughput is computed by the router, once a second from its byte counters (LinkThroughput),
// not in the page: every viewer sees the same figure from its first load, and a browser that
// throttles the timers of a background tab (or a headless one that runs them at once) does not
// skew it.

/// What the mesh page reads from `GET /topology.json`: the same objects as
/// `weft status topology --json` and `weft status connections --json`, and each sleeve link's
/// throughput.
public struct MeshPageData: Codable, Sendable, Equatable {
    public var topology: TopologyStatus
    public var connections: [ConnectionStatus]
    public var throughput: [LinkThroughput]

    public init(topology: TopologyStatus, connections: [ConnectionStatus], throughput: [LinkThroughput]) {
        self.topology = topology
        self.connections = connections
        self.throughput = throughput
    }
}

/// The frame bytes a sleeve link carried per second over the last interval, each way, as bits
/// per second (fastdp traffic stays in the kernel and is not counted).
public struct LinkThroughput: Codable, Sendable, Equatable {
    public var peer: String
    public var txBitsPerSecond: UInt64
    public var rxBitsPerSecond: UInt64
    /// The interval the rate is taken over, in milliseconds.
    public var intervalMs: UInt64

    public init(peer: String, txBitsPerSecond: UInt64, rxBitsPerSecond: UInt64, intervalMs: UInt64) {
        self.peer = peer
        self.txBitsPerSecond = txBitsPerSecond
        self.rxBitsPerSecond = rxBitsPerSecond
        self.intervalMs = intervalMs
    }

    /// Two readings of a link's counters: when (monotonic nanoseconds) and how many bytes.
    public struct Sample: Sendable, Equatable {
        public var atNanos: Int64, txBytes: UInt64, rxBytes: UInt64
        public init(atNanos: Int64, txBytes: UInt64, rxBytes: UInt64) {
            self.atNanos = atNanos
            self.txBytes = txBytes
            self.rxBytes = rxBytes
        }
    }

    /// The rate from `earlier` to `later`; nil when no time passed or a counter went backwards
    /// (a new session counts from zero again: that interval is no rate).
    public static func between(_ earlier: Sample, _ later: Sample, peer: String) -> LinkThroughput? {
        guard later.atNanos > earlier.atNanos, later.txBytes >= earlier.txBytes, later.rxBytes >= earlier.rxBytes else { return nil }
        let nanos = Double(later.atNanos - earlier.atNanos)
        func bits(_ bytes: UInt64) -> UInt64 { UInt64((Double(bytes) * 8 * 1e9 / nanos).rounded()) }
        return LinkThroughput(peer: peer, txBitsPerSecond: bits(later.txBytes - earlier.txBytes),
                              rxBitsPerSecond: bits(later.rxBytes - earlier.rxBytes), intervalMs: UInt64(nanos / 1e6))
    }
}

public enum MeshPage {
    /// Where the page's data is served; the page asks for it relative to itself (`topology.json`),
    /// so it also works behind a reverse proxy's prefix.
    public static let dataPath = "/topology.json"

    public static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weft mesh</title>
<style>
body { font: 14px/1.4 "DejaVu Sans", system-ui, sans-serif; margin: 0; color: #1d2733; background: #f4f6f8; }
header { background: #1d2733; color: #fff; padding: 10px 18px; display: flex; gap: 18px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 19px; margin: 0; }
#self { color: #d7e0e8; }
#state { margin-left: auto; font-size: 13px; color: #b8c4d0; }
#state.error { color: #ffb4a8; font-weight: bold; }
main { padding: 12px 18px; }
svg { display: block; width: 100%; height: auto; background: #fff; border: 1px solid #d5dce3; border-radius: 6px; }
.peer rect { fill: #fff; stroke: #55636f; stroke-width: 1.5; }
.peer.self rect { fill: #e8f0f8; stroke: #1d2733; stroke-width: 3; }
.peer.unreachable rect { stroke: #aab3bb; stroke-dasharray: 5 4; }
.peer.unreachable text { fill: #8a949c; }
.nick { font-size: 17px; font-weight: bold; }
.name, .mono { font-family: "DejaVu Sans Mono", monospace; }
.name { font-size: 13px; fill: #55636f; }
.link { stroke-width: 3.5; }
.link.sleeve { stroke: #2f6fb5; } .link.fastdp { stroke: #2e8b57; } .link.none { stroke: #c7832d; } .link.unknown { stroke: #9aa5ae; }
.link.pending { stroke-dasharray: 9 7; }
.label { font-size: 14px; paint-order: stroke; stroke: #fff; stroke-width: 6px; stroke-linejoin: round; }
.label .rate { font-weight: bold; }
.legend { font-size: 13px; color: #55636f; margin: 6px 2px 0; }
.legend b.sleeve { color: #2f6fb5; } .legend b.fastdp { color: #2e8b57; } .legend b.none { color: #a8671c; } .legend b.unknown { color: #7d8890; }
table { border-collapse: collapse; margin-top: 12px; background: #fff; width: 100%; }
th, td { border: 1px solid #d5dce3; padding: 4px 8px; text-align: left; }
th { background: #e9eef2; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<header><h1>Weft mesh</h1><span id="self"></span><span id="state">waiting for the router…</span></header>
<main>
<svg id="graph" viewBox="0 0 1000 500" role="img" aria-label="mesh topology"></svg>
<div class="legend">Line colour: <b class="sleeve">sleeve</b>, <b class="fastdp">fastdp</b>,
<b class="none">no data plane yet</b>, <b class="unknown">mode not reported</b> (by a router from before
the report). Mode and encryption of every link are what its two ends gossip (the lesser when they differ).
Dashed: not established at both ends. Throughput is shown for this router's own links only: what it
sends (↑) and receives (↓) over sleeve; fastdp traffic stays in the kernel and is not counted, and
links between two other routers show it on their ends' pages.</div>
<table>
<thead><tr><th>Link</th><th>State</th><th>Mode</th><th>Encryption</th><th>MTU</th><th>↑ out</th><th>↓ in</th></tr></thead>
<tbody id="links"></tbody>
</table>
</main>
<script>
"use strict";
const REFRESH_MS = 2000, W = 1000, H = 500, SVG = "http://www.w3.org/2000/svg", DATA = "\#(dataPath.dropFirst())";
const MODE_TEXT = {none: "no data plane yet", sleeve: "sleeve", fastdp: "fastdp"};

// Text only through textContent: nicknames come from other routers.
function el(tag, attrs, text, ns) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function bits(perSecond) {
  if (perSecond === null || perSecond === undefined) return "";
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let v = perSecond, i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}
function short(name) { return name.length > 17 ? name.slice(0, 17) + "…" : name; }

function draw(data) {
  const peers = data.topology.peers, links = data.topology.links;
  const me = peers.find(p => p.isSelf);
  const flows = new Map(data.throughput.map(t => [t.peer, {tx: t.txBitsPerSecond, rx: t.rxBitsPerSecond}]));
  document.getElementById("self").textContent = me ? "as seen by " + me.nickname + " (" + me.name + ")" : "";
  document.title = "Weft mesh" + (me ? " — " + me.nickname : "");

  // Peers on a circle, this router at the top.
  const ordered = me ? [me].concat(peers.filter(p => !p.isSelf)) : peers.slice();
  const where = new Map(), r = ordered.length > 1 ? Math.min(W, H) / 2 - 75 : 0;
  // Wider than high: a link's label is long and horizontal.
  ordered.forEach((p, i) => {
    const angle = -Math.PI / 2 + 2 * Math.PI * i / ordered.length;
    where.set(p.name, {x: W / 2 + r * Math.cos(angle) * 2, y: H / 2 + r * Math.sin(angle)});
  });
  // The drawing's box: the peers' boxes with a margin, at least 1000 by 300.
  const xs = [...where.values()].map(q => q.x), ys = [...where.values()].map(q => q.y);
  const left = Math.min(Math.min(...xs) - 120, W / 2 - 500), right = Math.max(Math.max(...xs) + 120, W / 2 + 500);
  const top = Math.min(Math.min(...ys) - 50, H / 2 - 150), bottom = Math.max(Math.max(...ys) + 50, H / 2 + 150);

  const svg = document.getElementById("graph"), tbody = document.getElementById("links");
  svg.replaceChildren();
  tbody.replaceChildren();
  const edges = el("g", {}, undefined, SVG), labels = el("g", {}, undefined, SVG), nodes = el("g", {}, undefined, SVG);
  const nickname = new Map(peers.map(p => [p.name, p.nickname]));
  for (const link of links) {
    const a = where.get(link.a), b = where.get(link.b);
    if (!a || !b) continue;
    const mode = link.mode || "unknown";
    const pending = link.state !== "established";
    edges.appendChild(el("line", {class: "link " + mode + (pending ? " pending" : ""), "data-mode": mode,
      "data-a": link.a, "data-b": link.b, x1: a.x, y1: a.y, x2: b.x, y2: b.y}, undefined, SVG));
    const other = me && link.a === me.name ? link.b : (me && link.b === me.name ? link.a : null);
    const flow = other ? flows.get(other) : undefined;
    const crypt = link.encrypted === true ? "encrypted" : (link.encrypted === false ? "clear" : "");
    const modeText = link.mode ? MODE_TEXT[link.mode] || link.mode : "mode not reported";
    const differ = link.ends ? "ends differ: " + link.ends.map(e => (nickname.get(e.peer) || short(e.peer)) + " "
      + (MODE_TEXT[e.mode] || e.mode) + " " + (e.encrypted ? "encrypted" : "clear")).join(", ") : "";
    const first = [modeText + (differ ? " (ends differ)" : ""), crypt, link.mtu ? "mtu " + link.mtu : "", pending ? link.state : ""]
      .filter(s => s).join(" · ");
    // Throughput for this router's own links only: it counts its own sessions, nobody else's.
    let second = "";
    if (other && link.mode === "fastdp") second = "kernel datapath: not counted";
    else if (flow) second = "↑ " + bits(flow.tx) + "  ↓ " + bits(flow.rx);
    else if (other && link.mode === "sleeve") second = "measuring…";
    const x = (a.x + b.x) / 2, y = (a.y + b.y) / 2;
    const text = el("text", {class: "label", x: x, y: second ? y - 4 : y + 5, "text-anchor": "middle"}, undefined, SVG);
    text.appendChild(el("tspan", {x: x}, first, SVG));
    if (second) text.appendChild(el("tspan", {x: x, dy: 18, class: "rate"}, second, SVG));
    labels.appendChild(text);

    const row = el("tr", {"data-mode": mode});
    row.appendChild(el("td", {}, (nickname.get(link.a) || short(link.a)) + " — " + (nickname.get(link.b) || short(link.b))));
    row.appendChild(el("td", {}, link.state));
    row.appendChild(el("td", {}, modeText + (differ ? " (" + differ + ")" : "")));
    row.appendChild(el("td", {}, crypt ? crypt + (link.cipher ? " (" + link.cipher + ")" : "") : "not reported"));
    row.appendChild(el("td", {class: "num"}, link.mtu ? String(link.mtu) : "—"));
    const counted = flow && link.mode === "sleeve";
    row.appendChild(el("td", {class: "num"}, counted ? bits(flow.tx) : "—"));
    row.appendChild(el("td", {class: "num"}, counted ? bits(flow.rx) : "—"));
    tbody.appendChild(row);
  }
  for (const p of ordered) {
    const at = where.get(p.name);
    const g = el("g", {class: "peer" + (p.isSelf ? " self" : "") + (p.reachable ? "" : " unreachable"),
      "data-name": p.name, "data-nickname": p.nickname}, undefined, SVG);
    g.appendChild(el("rect", {x: at.x - 95, y: at.y - 28, width: 190, height: 56, rx: 8}, undefined, SVG));
    g.appendChild(el("text", {class: "nick", x: at.x, y: at.y - 5, "text-anchor": "middle"}, short(p.nickname || p.name), SVG));
    g.appendChild(el("text", {class: "name", x: at.x, y: at.y + 15, "text-anchor": "middle"},
      p.name + (p.reachable ? "" : " (unreachable)"), SVG));
    g.appendChild(el("title", {}, p.nickname + " " + p.name, SVG));
    nodes.appendChild(g);
  }
  svg.append(edges, labels, nodes);
  svg.setAttribute("viewBox", [left, top, right - left, bottom - top].map(Math.round).join(" "));
  svg.setAttribute("data-peers", String(peers.length));
  svg.setAttribute("data-links", String(links.length));
}

function setState(text, error) {
  const state = document.getElementById("state");
  state.textContent = text;
  state.className = error ? "error" : "";
}

async function refresh() {
  try {
    const response = await fetch(DATA, {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    draw(await response.json());
    setState(peersText() + "updated " + new Date().toLocaleTimeString() + ", every " + REFRESH_MS / 1000 + " s", false);
  } catch (e) {
    setState("cannot read " + DATA + " from the router (" + e.message + "); retrying every " + REFRESH_MS / 1000 + " s", true);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
function peersText() {
  const svg = document.getElementById("graph");
  return svg.getAttribute("data-peers") + " routers, " + svg.getAttribute("data-links") + " links; ";
}
refresh();
</script>
</body>
</html>
"""#
}
