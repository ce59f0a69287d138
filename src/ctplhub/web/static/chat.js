/* The chat box on "/" (templates/_chat.html): asks POST /v1/ask and shows the answer in
   place. Without this script the same form POSTs /ask and the page comes back with the
   answer. Same origin only (the page's CSP); the VIN tail, if typed, goes in the body. */
(function () {
  "use strict";
  var form = document.getElementById("chat-form");
  var log = document.getElementById("chat-log");
  if (!form || !log || !window.fetch) return;
  function line(cls, text, lang) {
    var p = document.createElement("p");
    p.className = cls;
    if (lang) p.lang = lang;
    p.textContent = text;
    log.appendChild(p);
    return p;
  }
  form.addEventListener("submit", function (event) {
    var question = form.elements.question.value;
    var tail = form.elements.vin_last6.value.trim();
    if (!question.trim()) return;
    event.preventDefault();
    var body = { question: question };
    if (tail) body.vin_last6 = tail;
    var button = form.querySelector("button");
    button.disabled = true;
    line("chat-q", question);
    fetch("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      var code = !result.ok && result.data.error ? result.data.error.code : "";
      var text = result.ok ? result.data.answer
        : code === "not_found" ? form.dataset.notFound : form.dataset.failed;
      var lang = result.ok ? (result.data.language === "en" ? "en" : "zh-CN") : null;
      var previous = document.getElementById("chat-answer");
      if (previous) previous.removeAttribute("id");
      var answer = line("chat-a", text, lang);
      answer.id = "chat-answer";
      form.elements.question.value = "";
    }).catch(function () {
      form.submit();  /* the plain form still works */
    }).then(function () { button.disabled = false; });
  });
})();
