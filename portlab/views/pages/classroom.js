// The classroom's student page: the seat's state, its terminals (xterm.js over a websocket
// to a TTY on the node), Check and Reset. Everything from the server lands as text
// (textContent), never as markup, except the lab's diagram, which the server drew.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.getAttribute("data-csrf");
  var base = location.pathname.replace(/\/+$/, "");
  var terms = {};  // node -> {term, fit, ws, box}
  var shown = null;
  var state = "";
  var briefLoaded = false;
  var live = null;  // the lab's packets (an EventSource, live.js)
  function $(id) { return document.getElementById(id); }
  // the terminal's type is the page's, which grows with the window (classroom.css)
  function fontSize() { return Math.round(parseFloat(getComputedStyle(body).fontSize)); }
  function refit(t) {
    if (t.term.getOption("fontSize") !== fontSize()) { t.term.setOption("fontSize", fontSize()); }
    t.fit.fit();
  }

  function post(what) {
    return fetch(base + "/" + what, {method: "POST", credentials: "same-origin",
      headers: {"X-Portlab-CSRF": csrf}}).then(function (r) {
        return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t); });
      });
  }

  function socketUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  function open(node) {
    if (terms[node] && terms[node].ws.readyState <= 1) { return terms[node]; }
    var box = terms[node] ? terms[node].box : document.createElement("div");
    if (!terms[node]) { box.setAttribute("data-node", node); $("terms").appendChild(box); }
    else { box.innerHTML = ""; }
    var term = new Terminal({cursorBlink: true, fontSize: fontSize(), scrollback: 5000, rendererType: "dom",
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace'});
    var fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    var ws = new WebSocket(socketUrl(base + "/term/" + encodeURIComponent(node) +
      "?rows=" + term.rows + "&cols=" + term.cols));
    ws.binaryType = "arraybuffer";
    ws.onmessage = function (ev) {
      var bytes = new Uint8Array(ev.data);
      if (term.writeUtf8) { term.writeUtf8(bytes); } else { term.write(bytes); }
    };
    ws.onclose = function () { term.write("\r\n[the terminal closed: click its tab to open a new one]\r\n"); };
    var early = [];  // typed before the connection opened: sent once it does, never lost
    ws.onopen = function () {
      early.forEach(function (data) { ws.send(JSON.stringify({type: "input", data: data})); });
      early = [];
    };
    term.onData(function (data) {
      if (ws.readyState === 1) { ws.send(JSON.stringify({type: "input", data: data})); }
      else if (ws.readyState === 0) { early.push(data); }
    });
    term.onResize(function (size) {
      if (ws.readyState === 1) { ws.send(JSON.stringify({type: "resize", rows: size.rows, cols: size.cols})); }
    });
    terms[node] = {term: term, fit: fit, ws: ws, box: box};
    return terms[node];
  }

  function show(node) {
    if (state !== "ready" && state !== "checking") { return; }
    var t = open(node);
    shown = node;
    Object.keys(terms).forEach(function (n) { terms[n].box.hidden = n !== node; });
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
      b.classList.toggle("on", b.getAttribute("data-node") === node);
    });
    refit(t);
    t.term.focus();
  }

  function closeAll() {
    Object.keys(terms).forEach(function (n) { try { terms[n].ws.close(); } catch (e) {} });
  }

  function render(seat) {
    var was = state;
    state = seat.state;
    var words = {waiting: "waiting", queued: "waiting for a free place on the machine…",
      starting: "starting your lab…", ready: "ready",
      checking: "checking…", stopping: "stopping…", stopped: "stopped (it comes back)",
      failed: "could not start: " + seat.problem};
    $("state").textContent = (words[state] || state) +
      (seat.total ? " · " + seat.passed + " of " + seat.total + " checks passed" : "");
    $("check").disabled = state !== "ready";
    $("reset").disabled = state === "starting" || state === "stopping";
    if (seat.report) { $("result").textContent = seat.report; }
    var res = $("result").parentNode;
    res.classList.toggle("pass", seat.total > 0 && seat.passed === seat.total);
    res.classList.toggle("fail", !!seat.report && seat.passed < seat.total);
    if ((state === "ready" || state === "checking") && was !== "ready" && was !== "checking") {
      if (!briefLoaded) { loadBrief(); }
      show(shown || seat.nodes[0]);
    }
    if (state === "starting" || state === "stopping") {
      briefLoaded = false;
      closeAll();
      if (live) { live.close(); live = null; $("packets").textContent = ""; }
    }
  }

  function loadBrief() {
    briefLoaded = true;
    fetch(base + "/brief", {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { briefLoaded = false; return null; }
      return r.json();
    }).then(function (b) {
      if (!b) { return; }
      $("brief").textContent = b.brief;
      $("diagram").innerHTML = b.diagram;  // drawn by the server (Graphviz), not by a node
      if (window.portlabLive && !live) { live = window.portlabLive(base + "/events"); }
    });
  }

  function poll() {
    fetch(base + "/state", {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(render).catch(function () { $("state").textContent = "the server does not answer"; })
      .then(function () { setTimeout(poll, state === "ready" ? 4000 : 1000); });
  }

  $("check").onclick = function () {
    $("check").disabled = true;
    $("result").textContent = "Checking with real traffic…";
    post("check").then(render).catch(function (e) { $("result").textContent = e.message; });
  };
  $("reset").onclick = function () {
    if (!confirm("Reset gives you a fresh lab: everything you changed on it is gone. Reset?")) { return; }
    closeAll();
    post("reset").then(render).catch(function (e) { $("result").textContent = e.message; });
  };
  Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
    b.onclick = function () { show(b.getAttribute("data-node")); };
  });
  window.addEventListener("resize", function () { if (shown && terms[shown]) { refit(terms[shown]); } });
  poll();
}());
