// portlab's live page: follow /events (server-sent events) and light the diagram's links.
// Every link of the diagram is an SVG group with the id "link-NODE-IFACE" (see
// portlab/views/diagram.py); a packet seen on router's wan lights "link-router-wan".
// The classroom's student page uses it too: `window.portlabLive(url)` follows a stream
// there once the seat's diagram is in the page (a page with data-mode starts at once).
(function () {
  "use strict";
  var MAX_LINES = 200;
  var SVG = "http://www.w3.org/2000/svg";
  function $(id) { return document.getElementById(id); }
  function text(el, words) { el.textContent = words; }

  function light(link, count) {
    var parts = link.split(".");
    var g = $("link-" + parts[0] + "-" + parts[1]);
    if (!g) { return; }
    g.setAttribute("data-packets", String(Number(g.getAttribute("data-packets") || 0) + count));
    g.classList.add("lit");
    clearTimeout(g._portlabTimer);
    g._portlabTimer = setTimeout(function () { g.classList.remove("lit"); }, 1500);
  }

  function packet(ev) {
    if (ev.link) { pending.links[ev.link] = (pending.links[ev.link] || 0) + 1; }
    packetLine(ev);
  }

  // A check or a scan sends thousands of events in a few seconds (a forwarding check: about
  // 11,000, most of them the router's connections opening and closing). Drawing each as it
  // comes would lay the page out thousands of times and freeze it, so events wait in
  // `pending` and are drawn together at most every DRAW_EVERY ms: the links' counts summed,
  // only the newest MAX_LINES lines, and each node's newest NAT note.
  var DRAW_EVERY = 100;
  var pending = {lines: [], skipped: 0, links: {}, nats: {}, natList: [], timer: null};

  function later() {
    if (pending.timer === null) { pending.timer = setTimeout(draw, DRAW_EVERY); }
  }

  function packetLine(ev) {
    pending.lines.push(ev.node + "  " + ev.text);
    if (pending.lines.length > MAX_LINES) {
      pending.skipped += pending.lines.length - MAX_LINES;
      pending.lines.splice(0, pending.lines.length - MAX_LINES);
    }
    later();
  }

  function lineOf(words, kind) {
    var line = document.createElement("div");
    line.className = kind;
    text(line, words);
    return line;
  }

  function draw() {
    pending.timer = null;
    var box = $("packets");
    if (box && (pending.lines.length || pending.skipped)) {
      var lines = document.createDocumentFragment();
      if (pending.skipped) {
        lines.appendChild(lineOf("… " + pending.skipped + " more events, too many to show", "pkt skipped"));
      }
      pending.lines.forEach(function (words) { lines.appendChild(lineOf(words, "pkt")); });
      box.appendChild(lines);
      while (box.childNodes.length > MAX_LINES) { box.removeChild(box.firstChild); }
      box.scrollTop = box.scrollHeight;
    }
    Object.keys(pending.links).forEach(function (link) { light(link, pending.links[link]); });
    pending.natList.forEach(natItem);
    Object.keys(pending.nats).forEach(function (node) { natPicture(pending.nats[node]); });
    pending.lines = []; pending.skipped = 0; pending.links = {}; pending.nats = {}; pending.natList = [];
  }

  // Widen the picture's viewBox to everything drawn in it, notes included, so that a note
  // beside a node at the picture's edge is never cut off (the picture shrinks a little).
  function makeRoom(svg) {
    var box = svg.getBBox(), view = svg.viewBox.baseVal;
    var left = Math.min(view.x, box.x - 2), top = Math.min(view.y, box.y - 2);
    var right = Math.max(view.x + view.width, box.x + box.width + 2);
    var bottom = Math.max(view.y + view.height, box.y + box.height + 2);
    svg.setAttribute("viewBox", [left, top, right - left, bottom - top].join(" "));
  }

  function natNote(ev) {
    pending.natList.push(ev);
    if (pending.natList.length > 30) { pending.natList.shift(); }
    pending.nats[ev.node] = ev;
    later();
  }

  function natItem(ev) {
    var li = document.createElement("li");
    li.className = "nat-" + ev.nat;
    li.setAttribute("data-node", ev.node);
    text(li, ev.node + ": " + ev.text);
    var list = $("nat");
    list.insertBefore(li, list.firstChild);
    while (list.childNodes.length > 30) { list.removeChild(list.lastChild); }
  }

  function natPicture(ev) {
    // beside the router in the picture, too
    var g = $("node-" + ev.node);
    if (!g || !g.getBBox) { return; }
    var box = g.getBBox();
    var note = g.querySelector("text.natnote");
    if (!note) {
      note = document.createElementNS(SVG, "text");
      note.setAttribute("class", "natnote");
      note.setAttribute("x", String(box.x + box.width + 6));
      note.setAttribute("y", String(box.y + box.height / 2));
      g.appendChild(note);
    }
    var o = ev.original, t = ev.translated;
    function at(a, p) { return p === null || p === undefined ? a : a + ":" + p; }
    // two lines, centred on the node: what came in, and where it goes now
    note.textContent = "";
    [at(o.dst, o.dport) + " →", at(t.dst, t.dport)].forEach(function (words, i) {
      var line = document.createElementNS(SVG, "tspan");
      line.setAttribute("x", note.getAttribute("x"));
      line.setAttribute("dy", i ? "1.2em" : "-0.2em");
      text(line, words);
      note.appendChild(line);
    });
    makeRoom(note.ownerSVGElement);
    g.classList.add("nat-now");
    setTimeout(function () { g.classList.remove("nat-now"); }, 2000);
  }

  function showStep(step) {
    text($("slide-title"), step.title);
    text($("slide-count"), "step " + (step.index + 1) + " of " + step.total);
    text($("slide-say"), step.say);
    var run = $("slide-run");
    if (step.command) {
      run.hidden = false;
      text(run, step.node + "# " + step.command + (step.output ? "\n" + step.output : ""));
    } else { run.hidden = true; }
    var look = $("slide-look");
    look.hidden = !step.look;
    text(look, step.look || "");
    var checks = $("slide-checks");
    checks.innerHTML = "";
    if (step.checks) {
      step.checks.checks.forEach(function (c) {
        var p = document.createElement("p");
        p.className = "check-line";
        p.setAttribute("data-status", c.status);
        var s = document.createElement("span");
        s.className = "status " + c.status;
        text(s, c.status);
        p.appendChild(s);
        p.appendChild(document.createTextNode(" " + c.title));
        checks.appendChild(p);
      });
    }
    document.body.setAttribute("data-step", String(step.index));
    document.body.setAttribute("data-step-done", step.done ? "true" : "false");
  }

  var next = $("next");
  if (next) {
    next.addEventListener("click", function () {
      fetch("/next", { method: "POST" });
    });
  }

  function follow(url) {
    var source = new EventSource(url);
    source.addEventListener("open", function () { text($("conn"), "connected"); });
    source.addEventListener("error", function () { text($("conn"), "disconnected (retrying)"); });
    source.addEventListener("packet", function (m) {
      packet(JSON.parse(m.data));
    });
    source.addEventListener("connection", function (m) {
      var ev = JSON.parse(m.data);
      if (ev.nat) { natNote(ev); }
      packetLine(ev);
    });
    source.addEventListener("step", function (m) { showStep(JSON.parse(m.data)); });
    source.addEventListener("end", function (m) {
      draw();
      text($("conn"), JSON.parse(m.data).text);
      document.body.setAttribute("data-ended", "true");
      source.close();
    });
    return source;
  }

  window.portlabLive = follow;
  if (document.body.getAttribute("data-mode")) { follow("/events"); }
})();
