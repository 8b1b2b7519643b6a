// The live preview beside the message form: after each pause in typing, the form's fields are
// posted (with the form's CSRF token) to the preview endpoint, which answers with the message
// rendered for the chosen client, footer and headers included.
(function () {
  "use strict";
  var panel = document.getElementById("message-preview");
  var form = document.getElementById("message-form");
  if (!panel || !form) {
    return;
  }
  var content = document.getElementById("message-preview-content");
  var state = document.getElementById("message-preview-state");
  var chooser = document.getElementById("preview-client");
  var timer = null;
  var latest = 0;

  function refresh() {
    var number = ++latest;
    var data = new FormData(form);
    if (chooser) {
      data.set("preview_client", chooser.value);
    }
    state.textContent = state.dataset.updating;
    fetch(panel.dataset.previewUrl, {method: "POST", body: data, credentials: "same-origin",
                                     headers: {"X-CSRFToken": data.get("csrf_token") || ""}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (number === latest) {  // an older answer must not replace a newer one
          content.innerHTML = html;
          state.textContent = state.dataset.updated;
        }
      })
      .catch(function () {
        state.textContent = state.dataset.failed;
      });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  }

  form.addEventListener("input", soon);
  if (chooser) {
    chooser.addEventListener("change", refresh);
  }
  refresh();
})();
