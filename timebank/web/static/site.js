// timebank pages: small enhancements only. Every page works without this file,
// except scanning a voucher with the camera (typing the code always works).
(function () {
  "use strict";

  // A countdown to a time (the voucher's expiry): <span data-countdown="ISO time"
  // data-expired-text="...">; the server renders the time left, this keeps it current.
  function countdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(end)) return;
      function tick() {
        var left = Math.max(0, Math.round((end - Date.now()) / 1000));
        if (left === 0) {
          el.textContent = el.getAttribute("data-expired-text") || "";
          return;
        }
        var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
        el.textContent = (h ? h + ":" : "") + String(m).padStart(h ? 2 : 1, "0") + ":" + String(s).padStart(2, "0");
        setTimeout(tick, 1000);
      }
      tick();
    });
  }

  // The merchant counter: scan the resident's voucher QR with the camera where the
  // browser can detect barcodes; the scanned text goes into the form, which is sent.
  function scanner() {
    var button = document.querySelector("[data-scan]");
    if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
    var form = document.getElementById(button.getAttribute("data-scan"));
    var video = document.querySelector("[data-scan-video]");
    button.hidden = false;
    button.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.hidden = false;
        video.srcObject = stream;
        video.play();
        function look() {
          detector.detect(video).then(function (codes) {
            if (codes.length) {
              stream.getTracks().forEach(function (t) { t.stop(); });
              form.querySelector("[name=qr]").value = codes[0].rawValue;
              form.submit();
            } else {
              requestAnimationFrame(look);
            }
          }).catch(function () { requestAnimationFrame(look); });
        }
        look();
      }).catch(function () {
        button.hidden = true;
        var note = document.querySelector("[data-scan-failed]");
        if (note) note.hidden = false;
      });
    });
  }

  // A form that moves value is sent once: its button is disabled after the first tap
  // (the server also refuses a second one: each form carries its own idempotency key).
  function sendOnce() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      });
    });
  }

  // Activities: a check-in form of an activity with a radius (form[data-locate]) asks the
  // phone where it is and sends lat/lon with it; refused or slow (5 s), it is sent without.
  function locate() {
    document.querySelectorAll("form[data-locate]").forEach(function (form) {
      var asked = false;
      form.addEventListener("submit", function (event) {
        if (asked || !navigator.geolocation) return;
        event.preventDefault();
        asked = true;
        function send() { form.submit(); }
        navigator.geolocation.getCurrentPosition(function (where) {
          form.querySelector("[name=lat]").value = where.coords.latitude;
          form.querySelector("[name=lon]").value = where.coords.longitude;
          send();
        }, send, { timeout: 5000, maximumAge: 60000 });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    countdowns();
    scanner();
    sendOnce();
    locate();
  });
})();
