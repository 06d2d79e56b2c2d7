// The console's only script of its own (htmx does the rest). A live part refreshes every few
// seconds; while keyboard focus is inside it (a link in a table, say) it waits, so a refresh
// never takes the focus away from someone moving through the page with the keyboard.
document.addEventListener("htmx:beforeRequest", function (event) {
  var part = event.detail.elt;
  if (part && part.hasAttribute("data-live") && part.contains(document.activeElement)) {
    event.preventDefault();
  }
});

// Times come from the server in UTC (`<time datetime="…">2026-12-07 18:04:05 UTC</time>`, which is
// what a page shows without script). Each is shown in the browser's own zone instead, with the
// zone's name, and the UTC text stays as its tooltip; a live part's new times are shown so too.
function pad(n) {
  return (n < 10 ? "0" : "") + n;
}

function zoneName(at) {
  var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(at);
  for (var i = 0; i < parts.length; i++) {
    if (parts[i].type === "timeZoneName") return parts[i].value;
  }
  return "";
}

function localTimes(root) {
  var times = root.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i];
    var at = new Date(el.getAttribute("datetime"));
    if (el.hasAttribute("data-local") || isNaN(at.getTime())) continue;
    el.title = el.textContent;
    el.textContent =
      at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + " " +
      pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds()) + " " + zoneName(at);
    el.setAttribute("data-local", "");
  }
}

document.addEventListener("DOMContentLoaded", function () {
  localTimes(document);
});
document.addEventListener("htmx:load", function (event) {
  localTimes(event.detail.elt);
});
