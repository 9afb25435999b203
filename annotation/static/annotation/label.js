/* Keyboard shortcuts for the labeling page.
 *
 * 1..9 pick the matching choice: for ordinal and nominal schemas the choice is submitted at
 * once; for multi-label schemas it is ticked or unticked and Enter submits. Keys typed into
 * text fields are left alone. On phones the instructions start collapsed.
 */
(function () {
  "use strict";
  var form = document.getElementById("label-form");
  if (!form) {
    return;
  }
  var kind = form.getAttribute("data-kind");
  var sending = false;

  form.addEventListener("submit", function () {
    sending = true;
  });

  function typingInto(target) {
    if (!target || !target.tagName) {
      return false;
    }
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable) {
      return true;
    }
    return tag === "input" && ["checkbox", "radio", "button", "submit"].indexOf(target.type) < 0;
  }

  document.addEventListener("keydown", function (event) {
    if (sending || event.ctrlKey || event.metaKey || event.altKey || typingInto(event.target)) {
      return;
    }
    if (event.key >= "1" && event.key <= "9") {
      var control = form.querySelector('[data-shortcut="' + event.key + '"]');
      if (!control) {
        return;
      }
      event.preventDefault();
      if (kind === "multi_label") {
        control.checked = !control.checked;
        control.focus();
      } else {
        control.click();
      }
    } else if (event.key === "Enter" && kind === "multi_label") {
      event.preventDefault();
      var submit = form.querySelector('[type="submit"]');
      if (submit) {
        submit.click();
      }
    }
  });

  var instructions = document.getElementById("instructions");
  if (instructions && window.matchMedia("(max-width: 56rem)").matches) {
    instructions.removeAttribute("open");
  }
})();
