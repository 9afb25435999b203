// The dataset builder's live counts: whenever the recipe changes, ask the dry-run
// endpoint what it would ship and leave out, and show the answer next to the form.
// Without JavaScript the "Count what would ship" button does the same by a POST.
(function () {
  "use strict";
  var form = document.getElementById("recipe-form");
  var panel = document.getElementById("live-counts");
  if (!form || !panel) { return; }
  var url = form.getAttribute("data-dry-run-url");
  var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var timer = null;
  var asked = 0;

  function value(name) {
    var field = form.elements[name];
    return field ? field.value : "";
  }
  function checked(name) {
    var field = form.elements[name];
    return Boolean(field && field.checked);
  }
  function number(name) {
    return Number(value(name));
  }
  function recipe() {
    var targets = Array.prototype.slice.call(form.querySelectorAll("input[name=targets]:checked"))
      .map(function (box) { return box.value; });
    var formats = ["parquet"];
    if (checked("jsonl")) { formats.push("jsonl"); }
    if (checked("csv")) { formats.push("csv"); }
    return {
      min_labels: number("min_labels"),
      targets: targets,
      license_use: value("license_use"),
      consent: value("consent"),
      split: {
        ratios: [number("train"), number("validation"), number("test")],
        seed: number("seed"),
        strategy: value("strategy"),
        group_key: value("group_key") || null
      },
      formats: formats,
      near_duplicates: {
        text_threshold: number("text_threshold"),
        image_max_distance: number("image_max_distance")
      },
      stable_pseudonyms: checked("stable_pseudonyms")
    };
  }
  function show(text) {
    panel.textContent = text;
  }
  function ask() {
    var mine = ++asked;
    show("Counting…");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({recipe: recipe()})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (answer) {
      if (mine !== asked) { return; }
      if (!answer.ok) { show(answer.body.message || "This recipe is not valid."); return; }
      var body = answer.body;
      var out = [];
      Object.keys(body.left_out).forEach(function (reason) {
        var counts = body.left_out[reason];
        if (counts.items || counts.labels) {
          out.push(reason.replace(/_/g, " ") + ": " + counts.items + " items, " + counts.labels + " labels");
        }
      });
      show("Would ship " + body.items + " items with " + body.labels + " labels from " +
        body.annotators + " annotators." + (out.length ? " Left out: " + out.join("; ") + "." : ""));
    }).catch(function () {
      if (mine === asked) { show("Could not count just now."); }
    });
  }
  form.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 400);
  });
  ask();
}());
