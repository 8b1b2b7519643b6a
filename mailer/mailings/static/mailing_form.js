// The new-mailing form: "Send as soon as it is saved" hides the start (the server ignores it
// then) and names the button after what it does.
(function () {
  "use strict";
  var choices = document.querySelectorAll("[data-when] input[type=radio]");
  var start = document.querySelector("[data-start]");
  var submit = document.getElementById("submit");
  if (!choices.length || !start || !submit) {
    return;
  }

  function show() {
    var now = document.querySelector("[data-when] input[value=now]").checked;
    start.hidden = now;
    submit.value = now ? submit.dataset.labelNow : submit.dataset.labelLater;
  }

  choices.forEach(function (choice) {
    choice.addEventListener("change", show);
  });
  show();
})();

// Who receives the mailing: show the list to tick or the box for addresses only with its choice.
(function () {
  "use strict";
  var choices = document.querySelectorAll("[data-recipients] input[type=radio]");
  var parts = document.querySelectorAll("[data-recipients-for]");

  function show() {
    var chosen = document.querySelector("[data-recipients] input[type=radio]:checked");
    parts.forEach(function (part) {
      part.hidden = !chosen || part.dataset.recipientsFor !== chosen.value;
    });
  }

  choices.forEach(function (choice) {
    choice.addEventListener("change", show);
  });
  if (choices.length) {
    show();
  }
})();
