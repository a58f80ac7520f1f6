// Progressive enhancement of the CPV picker: results appear as you type. Without this script
// the picker's Search button asks the server for the same list.
(function () {
  "use strict";
  var box = document.querySelector("[data-cpv-search]");
  var hits = document.querySelector("[data-cpv-hits]");
  if (!box || !hits || !window.fetch) { return; }
  var timer = null, seq = 0;
  var lang = document.documentElement.lang || "sv";
  var chosen = document.querySelector("[data-cpv-chosen]");
  function show(list) {
    // Codes ticked in the last list stay chosen.
    Array.prototype.slice.call(hits.querySelectorAll("input:checked")).forEach(function (input) {
      if (chosen) { chosen.appendChild(input.parentNode); }
    });
    hits.textContent = "";
    if (!list.length) {
      var none = document.createElement("p");
      none.textContent = lang === "sv" ? "Inga koder hittades." : "No codes found.";
      hits.appendChild(none);
      return;
    }
    list.forEach(function (hit, i) {
      var row = document.createElement("div");
      row.className = "check";
      var input = document.createElement("input");
      input.type = "checkbox"; input.name = "cpv_codes"; input.value = hit.code;
      input.id = "cpv-live-" + i;
      var label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = hit.code + " " + hit.label;
      row.appendChild(input); row.appendChild(label);
      hits.appendChild(row);
    });
  }
  box.addEventListener("input", function () {
    clearTimeout(timer);
    var q = box.value.trim();
    if (q.length < 2) { return; }
    timer = setTimeout(function () {
      var mine = ++seq;
      fetch("/cpv/search?q=" + encodeURIComponent(q) + "&lang=" + lang, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (list) { if (mine === seq) { show(list); } })
        .catch(function () {});
    }, 250);
  });
  box.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); }
  });
})();
