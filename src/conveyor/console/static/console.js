// Live updates: one EventSource per page on the server's event stream. Each message about
// this page's pipeline re-renders the page's live part (#live) with htmx; a message that
// arrives while a refresh is under way, or while someone types in a form of that part,
// causes one more refresh once that is over, and what was typed is put back after it.
// Without JavaScript the pages work as they are.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (live && window.EventSource && window.htmx) {
    var wanted = live.getAttribute("data-live");
    // From the event before the page was read, so that nothing between the two is missed.
    var query = "?after=" + encodeURIComponent(live.getAttribute("data-since") || "");
    if (wanted && wanted !== "*") { query += "&pipeline=" + encodeURIComponent(wanted); }
    var busy = false, again = false;
    var typing = function () {
      var active = document.activeElement;
      return active && live.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
    };
    // What was typed into a form of the live part survives its refresh: each field is known
    // by its form's target, its form's hidden fields (stage, action, token) and its name.
    var fieldKey = function (field) {
      var form = field.form;
      var hidden = form ? Array.prototype.map.call(
        form.querySelectorAll("input[type=hidden]:not([name=csrf])"),
        function (h) { return h.name + "=" + h.value; }).join("&") : "";
      return (form ? form.getAttribute("action") : "") + "?" + hidden + "#" + field.name;
    };
    var typed = function () {
      var kept = {};
      live.querySelectorAll("textarea, input:not([type]), input[type=text]").forEach(
        function (field) { if (field.value) { kept[fieldKey(field)] = field.value; } });
      return kept;
    };
    var restore = function (kept) {
      live.querySelectorAll("textarea, input:not([type]), input[type=text]").forEach(
        function (field) {
          var value = kept[fieldKey(field)];
          if (value !== undefined && !field.value) { field.value = value; }
        });
    };
    var refresh = function () {
      if (busy || typing()) { again = true; return; }
      busy = true; again = false;
      var kept = typed();
      // The page's own address: a refused form's answer is shown at the form's address.
      var url = live.getAttribute("data-url") || window.location.pathname + window.location.search;
      htmx.ajax("GET", url,
                { target: "#live", swap: "innerHTML" })
        .then(function () {
          restore(kept);
          busy = false;
          document.dispatchEvent(new CustomEvent("conveyor:refreshed"));
          if (again) { refresh(); }
        }, function () { busy = false; });
    };
    live.addEventListener("focusout", function () { if (again) { setTimeout(refresh, 0); } });
    var source = new EventSource("/console/events" + query);
    source.onmessage = refresh;
    source.onopen = function () { document.documentElement.setAttribute("data-live", "open"); };
  }
  // A running action's log: new lines arrive as HTML already made safe by the server.
  var log = document.getElementById("log");
  var follow = log && log.getAttribute("data-follow");
  if (follow && window.EventSource) {
    var stream = new EventSource(follow);
    stream.addEventListener("log", function (event) {
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.insertAdjacentHTML("beforeend", JSON.parse(event.data));
      if (atEnd) { log.scrollTop = log.scrollHeight; }
    });
    stream.addEventListener("end", function () {
      stream.close();
      var state = document.getElementById("follow-state");
      if (state) { state.textContent = "The action has finished: reload for its final status."; }
    });
  }
})();
