// Progress bars carry their percentage in data-percent: the Content-Security-Policy allows no
// inline styles, so their width is set here.
(function () {
  "use strict";
  document.querySelectorAll(".progress-bar[data-percent]").forEach(function (bar) {
    bar.style.width = bar.dataset.percent + "%";
  });
})();
