// The organisation recorder's pages: the progress of a file being sent and checked or
// imported. A form with data-progress="ID" (sent by htmx) shows the element ID while
// it is sent: the share of the file sent so far, then a bar without an end while the
// server works. Without this file the forms work the same, without a bar.
(function () {
  "use strict";

  function boxOf(elt) {
    var form = elt && elt.closest ? elt.closest("form[data-progress]") : null;
    return form ? document.getElementById(form.getAttribute("data-progress")) : null;
  }

  function phase(box, name) {
    box.querySelectorAll("[data-phase]").forEach(function (el) {
      el.hidden = el.getAttribute("data-phase") !== name;
    });
    var bar = box.querySelector("progress");
    if (name === "working" && bar) bar.removeAttribute("value");  // no end known: the indeterminate bar
    box.setAttribute("data-state", name);
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    var box = boxOf(e.target);
    if (!box) return;
    var bar = box.querySelector("progress");
    if (bar) bar.value = 0;
    phase(box, "sending");
    box.hidden = false;
  });

  document.addEventListener("htmx:xhr:progress", function (e) {
    var box = boxOf(e.target);
    if (!box || box.getAttribute("data-state") !== "sending") return;
    var d = e.detail || {};
    if (!d.lengthComputable || !d.total) return;
    var bar = box.querySelector("progress");
    var share = Math.min(100, Math.round((d.loaded / d.total) * 100));
    if (bar && share > bar.value) bar.value = share;
    if (share >= 100) phase(box, "working");
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var box = boxOf(e.target);
    if (box) box.hidden = true;
  });
})();
