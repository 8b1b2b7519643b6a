// The mailing form's client list: filter by name or e-mail, select all shown, select none.
// Plain DOM work over one list of labels, fast enough for several thousand clients.
(function () {
  "use strict";

  function setUp(picker) {
    var list = picker.querySelector("[data-list]");
    var filter = picker.querySelector("[data-filter]");
    var count = picker.querySelector("[data-count]");
    var labels = Array.prototype.slice.call(list.querySelectorAll("label"));
    var boxes = labels.map(function (label) { return label.querySelector("input"); });
    var texts = labels.map(function (label) { return label.textContent.toLowerCase(); });

    function showCount() {
      var checked = 0;
      for (var i = 0; i < boxes.length; i++) { if (boxes[i].checked) { checked++; } }
      count.textContent = count.dataset.template.replace("{selected}", checked).replace("{total}", boxes.length);
    }

    function applyFilter() {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (var i = 0; i < labels.length; i++) {
        var text = texts[i];
        labels[i].hidden = !words.every(function (word) { return text.indexOf(word) !== -1; });
      }
    }

    function select(all) {
      for (var i = 0; i < boxes.length; i++) {
        if (!all) { boxes[i].checked = false; } else if (!labels[i].hidden) { boxes[i].checked = true; }
      }
      showCount();
    }

    filter.addEventListener("input", applyFilter);
    // Enter in the filter box must not submit the whole form.
    filter.addEventListener("keydown", function (event) { if (event.key === "Enter") { event.preventDefault(); } });
    list.addEventListener("change", showCount);
    picker.querySelector("[data-select=all]").addEventListener("click", function () { select(true); });
    picker.querySelector("[data-select=none]").addEventListener("click", function () { select(false); });
  }

  document.querySelectorAll("[data-client-picker]").forEach(setUp);
})();
