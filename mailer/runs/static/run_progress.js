// Keeps the run page's counters and progress bar up to date while the run is live (queued or
// sending, or paused / cancelled while a worker still holds some of its messages), by polling
// the run's progress JSON; reloads the page once it is not (for its buttons).
(function () {
  "use strict";
  var panel = document.getElementById("run-progress");
  if (!panel || panel.dataset.active !== "true") {
    return;
  }
  var url = panel.dataset.progressUrl;
  var bar = panel.querySelector(".progress-bar");
  var progress = panel.querySelector(".progress");

  function show(data) {
    ["sent", "failed", "skipped", "pending", "sending", "done", "total", "unknown", "held_back"].forEach(function (name) {
      panel.querySelectorAll("[data-count='" + name + "']").forEach(function (node) {
        node.textContent = data[name] === null ? "" : data[name];
      });
    });
    var unknown = document.getElementById("run-unknown");
    if (unknown) {
      unknown.classList.toggle("d-none", !data.unknown);
    }
    var heldBack = document.getElementById("run-held-back");
    if (heldBack) {
      heldBack.classList.toggle("d-none", !data.held_back);
    }
    bar.style.width = data.percent + "%";
    bar.textContent = data.percent + "%";
    progress.setAttribute("aria-valuenow", data.percent);
    var status = document.getElementById("run-status");
    if (status) {
      status.textContent = data.status_word;
    }
  }

  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.live) {
          window.setTimeout(poll, 1500);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);  // the server is restarting or the network hiccuped
      });
  }

  window.setTimeout(poll, 1000);
})();
