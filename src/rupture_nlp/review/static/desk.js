// Keyboard shortcuts of the moderators' desk (served from the desk itself; no inline script).
// Queue: j/k next/previous thread, Enter or o opens it. Thread: j/k next/previous thread,
// r marks it reviewed, c opens the corrections of the post in view, Esc closes them.
(function () {
  "use strict";
  var page = document.body.dataset.page;

  // No shortcut while typing, or while choosing labels in an open correction form.
  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.tagName === "INPUT" ||
      (el.closest && el.closest("details.correct[open]") !== null));
  }

  // Queue rows
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
  var current = rows.length ? 0 : -1;
  function mark(i) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("current", k === current); });
    rows[current].scrollIntoView({ block: "nearest" });
  }
  if (page === "queue") { mark(0); }

  // Posts of a thread: the one in view is the first whose bottom is below the top of the window.
  function postInView() {
    var posts = document.querySelectorAll("article.post");
    for (var i = 0; i < posts.length; i++) {
      if (posts[i].getBoundingClientRect().bottom > 60) { return posts[i]; }
    }
    return posts[0] || null;
  }

  // The consistency rule as you click: rupture_type none sets not_applicable, a rupture clears it.
  document.querySelectorAll("details.correct form").forEach(function (form) {
    form.addEventListener("change", function (e) {
      if (e.target.name !== "rupture_type") { return; }
      ["repair_outcome", "therapist_response"].forEach(function (facet) {
        var na = form.querySelector("input[name='" + facet + "'][value='not_applicable']");
        if (!na) { return; }
        if (e.target.value === "none") { na.checked = true; } else if (na.checked) { na.checked = false; }
      });
    });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (e.key === "Escape") {
      document.querySelectorAll("details.correct[open]").forEach(function (d) { d.open = false; });
      if (document.activeElement) { document.activeElement.blur(); }
      return;
    }
    if (typing(document.activeElement)) { return; }
    var link;
    if (page === "queue") {
      if (e.key === "j") { mark(current + 1); }
      else if (e.key === "k") { mark(current - 1); }
      else if ((e.key === "Enter" || e.key === "o") && current >= 0) { window.location = rows[current].dataset.href; }
      else { return; }
      e.preventDefault();
    } else if (page === "thread") {
      if (e.key === "j" || e.key === "k") {
        link = document.getElementById(e.key === "j" ? "next" : "prev");
        if (link) { window.location = link.href; }
      } else if (e.key === "r") {
        document.getElementById("mark-reviewed").click();
      } else if (e.key === "c") {
        var post = postInView();
        var details = post && post.querySelector("details.correct");
        if (details) {
          details.open = true;
          var checked = details.querySelector("input[type=radio]:checked") || details.querySelector("input[type=radio]");
          if (checked) { checked.focus(); }
        }
      } else { return; }
      e.preventDefault();
    }
  });
}());
