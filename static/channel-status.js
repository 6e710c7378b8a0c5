// The channel page (templates/saleschannels/detail.html): while a check or an issuance is
// under way, the status section carries data-refresh, the URL of that section alone; it is
// fetched every 2 s and swapped in until the status settles. Copy buttons put the text of
// the element they name on the clipboard. Loaded from 'self' under the page's CSP.
(function () {
  "use strict";
  var PERIOD_MS = 2000;

  function refresh() {
    var panel = document.getElementById("channel-status");
    if (!panel || !panel.dataset.refresh) {
      return;
    }
    fetch(panel.dataset.refresh, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#channel-status");
        if (fresh) {
          panel.replaceWith(fresh);
        }
        window.setTimeout(refresh, PERIOD_MS);
      })
      .catch(function () {
        window.setTimeout(refresh, PERIOD_MS * 5);
      });
  }

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        if (!source || !navigator.clipboard) {
          return;
        }
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    window.setTimeout(refresh, PERIOD_MS);
  });
})();
