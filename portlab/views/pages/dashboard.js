// The trainer's dashboard: every seat (polled), Reset and Stop, and a read-only view of a
// seat's terminal. Whatever a seat or node says lands as text (textContent).
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf");
  var nodes = (document.body.getAttribute("data-nodes") || "").split(" ").filter(Boolean);
  var base = location.pathname.replace(/\/+$/, "");
  var watching = null;
  function $(id) { return document.getElementById(id); }
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }
  function button(td, words, act) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = words;
    b.onclick = act;
    td.appendChild(b);
  }
  function act(seat, action) {
    if (!confirm(action + " " + seat.label + "'s lab? Their work on it is gone.")) { return; }
    fetch(base + "/seats/" + seat.seat + "/" + action, {method: "POST", credentials: "same-origin",
      headers: {"X-Portlab-CSRF": csrf}}).then(function (r) { return r.json(); }).then(draw);
  }
  function ago(s) { return s === null ? "never" : s < 60 ? s + " s ago" : Math.round(s / 60) + " min ago"; }
  function draw(data) {
    var body = $("seats").tBodies[0];
    body.textContent = "";
    data.seats.forEach(function (seat) {
      var row = document.createElement("tr");
      row.setAttribute("data-seat", seat.seat);
      cell(row, seat.label);
      cell(row, seat.state + (seat.problem ? ": " + seat.problem : ""), "state");
      cell(row, seat.ever_passed.length + " of " + seat.total, "passed");
      data.checks.forEach(function (c) {
        var now = seat.checks[c];
        cell(row, now === true ? "✓" : now === false ? "✗" : "·", now === true ? "pass" : now === false ? "fail" : "");
      });
      cell(row, ago(seat.last_seen));
      cell(row, seat.terminals.join(", ") || "none");
      var td = cell(row, "");
      nodes.forEach(function (n) { button(td, "Watch " + n, function () { watch(seat, n); }); });
      button(td, "Reset", function () { act(seat, "reset"); });
      button(td, "Stop", function () { act(seat, "stop"); });
      body.appendChild(row);
    });
  }
  function watch(seat, node) {
    if (watching) { watching.ws.close(); }
    var box = $("watch");
    box.textContent = "";
    var inner = document.createElement("div");
    box.appendChild(inner);
    var term = new Terminal({fontSize: 15, disableStdin: true, scrollback: 5000, rendererType: "dom"});
    var fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(inner);
    fit.fit();
    $("watching").textContent = "Watching " + seat.label + " on " + node + " (read-only)";
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      base + "/watch/" + seat.seat + "/" + encodeURIComponent(node));
    ws.binaryType = "arraybuffer";
    ws.onmessage = function (ev) {
      var bytes = new Uint8Array(ev.data);
      if (term.writeUtf8) { term.writeUtf8(bytes); } else { term.write(bytes); }
    };
    watching = {ws: ws, term: term};
  }
  function poll() {
    fetch(base + "/seats", {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(draw).catch(function () {}).then(function () { setTimeout(poll, 2000); });
  }
  poll();
}());
