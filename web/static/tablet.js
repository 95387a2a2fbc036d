// The tablet page: shows the open check-in or reminder and sends the resident's answer.
// The device key comes once in the address (#key=...) and is kept in this browser.
(function () {
  "use strict";
  var KEY_NAME = "vaki.tablet.key";
  var match = /[#&]key=([^&]+)/.exec(window.location.hash);
  if (match) {
    window.localStorage.setItem(KEY_NAME, decodeURIComponent(match[1]));
    window.history.replaceState(null, "", window.location.pathname);
  }
  var key = window.localStorage.getItem(KEY_NAME);
  var shown = null;
  var $ = function (id) { return document.getElementById(id); };

  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    });
  }

  function button(label, onClick, secondary) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (secondary) { b.className = "secondary"; }
    b.addEventListener("click", onClick);
    return b;
  }

  function ask(prompt, questions, answer, answers) {
    // One question per screen; the answer goes when the last one is answered.
    if (questions.length === 0) { send(prompt, answer, answers); return; }
    var question = questions[0];
    var rest = questions.slice(1);
    $("prompt-text").textContent = question.text;
    var choices = $("choices");
    choices.replaceChildren();
    choices.className = "choices" + (question.kind === "scale" ? " scale" : "");
    function next(value) {
      answers[question.id] = value;
      ask(prompt, rest, answer, answers);
    }
    if (question.kind === "scale") {
      for (var n = question.min; n <= question.max; n++) {
        choices.appendChild(button(String(n), next.bind(null, n)));
      }
    } else if (question.kind === "choice") {
      question.options.forEach(function (o) { choices.appendChild(button(o.label, next.bind(null, o.value))); });
    } else {
      choices.appendChild(button("✓", next.bind(null, true)));
      choices.appendChild(button("✗", next.bind(null, false), true));
    }
  }

  function send(prompt, answer, answers) {
    api("POST", "/api/tablet/prompts/" + encodeURIComponent(prompt.prompt_id) + "/answer",
        { answer: answer, answers: answers })
      .then(function () { shown = null; refresh(); })
      .catch(function () { $("status").textContent = "…"; });
  }

  function show(prompt) {
    shown = prompt.prompt_id;
    $("idle").hidden = true;
    $("prompt").hidden = false;
    $("prompt-text").textContent = prompt.text;
    $("prompt-title").textContent = prompt.title;
    var choices = $("choices");
    choices.replaceChildren();
    choices.className = "choices";
    if (prompt.questions) {
      ask(prompt, prompt.questions, "done", {});
      return;
    }
    prompt.answers.forEach(function (choice) {
      choices.appendChild(button(choice.label, function () {
        if (choice.value === "not_so_good" && prompt.follow_up) {
          ask(prompt, prompt.follow_up, choice.value, {});
        } else {
          send(prompt, choice.value, {});
        }
      }));
    });
  }

  function refresh() {
    if (!key) { return; }
    api("GET", "/api/tablet/prompts").then(function (data) {
      $("status").textContent = "";
      if (data.prompts.length === 0) {
        shown = null;
        $("prompt").hidden = true;
        $("idle").hidden = false;
      } else if (data.prompts[0].prompt_id !== shown) {
        show(data.prompts[0]);
      }
    }).catch(function () { $("status").textContent = "…"; });
  }

  function tick() { $("clock").textContent = new Date().toLocaleString(document.documentElement.lang); }
  tick();
  window.setInterval(tick, 30000);
  refresh();
  window.setInterval(refresh, 15000);
}());
