// The console's only script of its own (htmx does the rest). A live part refreshes every few
// seconds; while keyboard focus is inside it (a link in a table, say) it waits, so a refresh
// never takes the focus away from someone moving through the page with the keyboard.
document.addEventListener("htmx:beforeRequest", function (event) {
  var part = event.detail.elt;
  if (part && part.hasAttribute("data-live") && part.contains(document.activeElement)) {
    event.preventDefault();
  }
});
