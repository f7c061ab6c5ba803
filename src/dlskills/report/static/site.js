/* dlskills site: equations (KaTeX, shipped beside this file) and the index's filters. */
(function () {
  "use strict";

  // Each .eq holds its formula as text and, in data-tex, a LaTeX translation. KaTeX renders
  // the translation; when it cannot parse it, the original text stays, marked as plain.
  // Formulas inside a closed <details> are typeset when it opens (long pages load faster).
  function renderEquations(root) {
    if (typeof katex === "undefined") return;
    root.querySelectorAll(".eq[data-tex]:not(.eq-tex):not(.eq-plain)").forEach(function (el) {
      var closed = el.closest("details:not([open])");
      if (closed) return;
      var original = el.textContent;
      try {
        katex.render(el.getAttribute("data-tex"), el, {
          throwOnError: true,
          strict: "ignore",
          displayMode: el.classList.contains("eq-display"),
        });
        el.classList.add("eq-tex");
        el.title = original;
      } catch (err) {
        el.textContent = original;
        el.classList.add("eq-plain");
      }
    });
  }

  function setUpFilters() {
    var section = document.getElementById("f-section");
    if (!section) return;
    var status = document.getElementById("f-status");
    var kind = document.getElementById("f-kind");
    var search = document.getElementById("f-search");
    var shown = document.getElementById("shown");
    var noMatch = document.getElementById("no-match");
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.entry"));
    var groups = Array.prototype.slice.call(document.querySelectorAll("section.group"));

    function apply() {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var count = 0;
      rows.forEach(function (row) {
        var d = row.dataset;
        var match =
          (!section.value || d.section === section.value) &&
          (!status.value || d.status === status.value) &&
          (!kind.value || d.kind.split(" ").indexOf(kind.value) >= 0) &&
          words.every(function (w) { return d.search.indexOf(w) >= 0; });
        row.hidden = !match;
        if (match) count += 1;
      });
      groups.forEach(function (group) {
        group.hidden = !group.querySelector("tr.entry:not([hidden])");
      });
      shown.textContent = count + " of " + rows.length + " entries";
      noMatch.hidden = count > 0;
    }

    [section, status, kind].forEach(function (el) { el.addEventListener("change", apply); });
    search.addEventListener("input", apply);
    apply();
  }

  renderEquations(document);
  document.querySelectorAll("details").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (details.open) renderEquations(details);
    });
  });
  setUpFilters();
})();
