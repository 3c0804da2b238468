// Progressive enhancement only: every page works without this file.
// Ready-to-copy fields get a "Copy" button and select their text on focus. The button
// selects the text too, so what was copied is what is highlighted, and Ctrl+C still works
// where the clipboard API is missing (plain HTTP on another host than localhost).
document.querySelectorAll("input.copy").forEach(function (input) {
  input.addEventListener("focus", function () { input.select(); });
  var button = document.createElement("button");
  button.type = "button";
  button.className = "copy-button";
  button.textContent = "Copy";
  button.setAttribute("aria-label", "Copy " + (input.getAttribute("aria-label") || "value"));
  function say(text) {
    button.textContent = text;
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  function copyBySelection() {
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    say(copied ? "Copied" : "Press Ctrl+C");
  }
  button.addEventListener("click", function () {
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { say("Copied"); }, copyBySelection);
    } else {
      copyBySelection();
    }
  });
  input.insertAdjacentElement("afterend", button);
});
