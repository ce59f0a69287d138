// /verify: scan a certificate's QR code with the camera where the browser can
// (BarcodeDetector); the token goes into the page's form, which is then submitted.
// Without the API the paste box is all there is, and the page works the same.
"use strict";

(function () {
  var scan = document.getElementById("scan");
  var start = document.getElementById("scan-start");
  var video = document.getElementById("scan-video");
  var note = document.getElementById("scan-note");
  var form = document.getElementById("verify-form");
  var field = document.getElementById("token");
  if (!scan || !form || !field) {
    return;
  }
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) {
    return;
  }
  var detector;
  try {
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  } catch (error) {
    return;
  }
  scan.hidden = false;

  function stop(stream) {
    stream.getTracks().forEach(function (track) { track.stop(); });
    video.hidden = true;
    note.hidden = true;
  }

  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        note.hidden = false;
        return video.play().then(function () {
          function look() {
            detector.detect(video).then(function (codes) {
              var found = codes.find(function (code) {
                return typeof code.rawValue === "string" && code.rawValue.indexOf(".") > 0;
              });
              if (found) {
                stop(stream);
                field.value = found.rawValue;
                form.submit();
              } else {
                window.setTimeout(look, 250);
              }
            }).catch(function () { window.setTimeout(look, 500); });
          }
          look();
        });
      })
      .catch(function () {
        note.hidden = false;
      });
  });
})();
