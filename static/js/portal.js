/* The portal's only script: chunked resumable uploads and live refresh of progress.
   No framework, no CDN, no inline script (the Content-Security-Policy forbids it). */
(function () {
  "use strict";
  var CHUNK = 8 * 1024 * 1024; // 8 MB: a dropped connection costs at most this much again

  function guessKind(name) {
    var n = name.toLowerCase(), base = n.split("/").pop();
    if (base === "config.json" || base === "generation_config.json") return "config";
    if (/^(tokenizer(\.json|\.model|_config\.json)|vocab\.(txt|json)|merges\.txt|special_tokens_map\.json)$/.test(base)) return "tokenizer";
    if (/\.(safetensors|gguf|bin|pt|pth|ckpt)$/.test(base) || base === "model.safetensors.index.json") return "weights";
    if (base === "readme.md" || base === "model_card.md") return "model_card";
    if (/(sbom|\.cdx\.json$|\.spdx)/.test(base)) return "sbom";
    if (/\.(zip|tar|tgz|tar\.gz|tar\.zst|tzst)$/.test(base)) return "source_archive";
    return "other";
  }

  function api(method, url, csrf, body, headers) {
    return fetch(url, {
      method: method, credentials: "same-origin", body: body,
      headers: Object.assign({"X-CSRFToken": csrf, "Accept": "application/json"}, headers || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { return {status: r.status, data: data}; });
    });
  }

  function describeError(data) {
    if (!data) return "error";
    if (typeof data.detail === "string") return data.detail;
    return Object.keys(data).map(function (k) { return [].concat(data[k]).join(" "); }).join(" ");
  }

  function uploadOne(box, file, kind, item) {
    var csrf = box.dataset.csrf, base = box.dataset.api;
    var name = file.webkitRelativePath || file.name;
    var bar = item.querySelector("progress"), text = item.querySelector(".up-text");
    function say(msg) { text.textContent = name + ": " + msg; }
    return api("POST", base, csrf, JSON.stringify({submission: +box.dataset.submission, kind: kind, filename: name, size: file.size}),
               {"Content-Type": "application/json"}).then(function (res) {
      if (res.status !== 201 && res.status !== 200) { throw new Error(describeError(res.data)); }
      var session = res.data, offset = session.received, retries = 0;
      function next() {
        bar.value = file.size ? offset / file.size : 1;
        say(Math.floor(100 * offset / (file.size || 1)) + " %");
        if (offset >= file.size) return Promise.resolve(session);
        var end = Math.min(offset + CHUNK, file.size);
        return api("PATCH", base + session.id + "/chunk/", csrf, file.slice(offset, end),
                   {"Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset)})
          .then(function (r) {
            if (r.status === 200) { session = r.data; offset = session.received; retries = 0; return next(); }
            if (r.status === 409 && typeof r.data.received === "number") { offset = r.data.received; return next(); }
            throw new Error(describeError(r.data));
          }, function (err) {
            // Network dropped: ask where the upload stands, then carry on (at most 5 tries in a row).
            if (++retries > 5) throw err;
            say("connection lost, resuming…");
            return new Promise(function (ok) { setTimeout(ok, 1000 * retries); })
              .then(function () { return api("GET", base + session.id + "/", csrf); })
              .then(function (r) { if (r.status === 200) { session = r.data; offset = session.received; } return next(); });
          });
      }
      return next();
    }).then(function (session) {
      bar.value = 1;
      if (session.artifact) say("done, SHA-256 " + session.artifact.sha256);
      else say("done");
      item.classList.add("done");
    }, function (err) {
      item.classList.add("failed");
      say("failed: " + err.message);
    });
  }

  function initUploader(box) {
    var start = box.querySelector("#up-start");
    start.addEventListener("click", function () {
      var files = [].slice.call(box.querySelector("#up-files").files).concat([].slice.call(box.querySelector("#up-dir").files));
      var chosen = box.querySelector("#up-kind").value, list = box.querySelector("#up-progress");
      if (!files.length) { list.innerHTML = ""; var li = document.createElement("li"); li.textContent = "Choose a file first."; list.appendChild(li); return; }
      start.disabled = true;
      var chain = Promise.resolve();
      files.forEach(function (file) {
        var item = document.createElement("li");
        var bar = document.createElement("progress"); bar.max = 1; bar.value = 0;
        bar.setAttribute("aria-label", file.webkitRelativePath || file.name);
        var text = document.createElement("span"); text.className = "up-text"; text.textContent = file.name + ": waiting";
        item.appendChild(bar); item.appendChild(text); list.appendChild(item);
        var kind = chosen === "auto" ? guessKind(file.webkitRelativePath || file.name) : chosen;
        chain = chain.then(function () { return uploadOne(box, file, kind, item); });
      });
      chain.then(function () { start.disabled = false; if (!box.querySelector(".failed")) window.location.reload(); });
    });
  }

  function announce(el) {
    // One short status line for screen readers instead of re-reading the whole table.
    var status = el.dataset.statusId && document.getElementById(el.dataset.statusId);
    if (!status) return;
    var running = el.querySelectorAll("[data-live-active]").length;
    var total = el.querySelectorAll("tbody tr").length;
    var text = running ? (status.dataset.progressText || "%(done)s / %(total)s") : (status.dataset.doneText || "");
    status.textContent = text.replace("%(done)s", String(total - running)).replace("%(total)s", String(total));
  }

  function fetchFragment(el) {
    return fetch(el.dataset.liveUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (r.ok) return r.text(); });
  }

  function replaceFragment(el, html) {
    // A fragment where the person has started typing (a finding's decision) is not replaced under
    // their hands: a status line says it changed instead.
    if (html === undefined) return;
    if (el.dataset.keepEdits === "1" && el.dataset.edited === "1") {
      var stale = el.dataset.staleId && document.getElementById(el.dataset.staleId);
      if (stale) stale.textContent = stale.dataset.staleText || "";
      return;
    }
    el.innerHTML = html;
    announce(el);
  }

  function activeCount(el) { return el.querySelectorAll("[data-live-active]").length; }

  function initLive(leader) {
    // Re-fetch the fragment every 2 s while anything in it is still running. Fragments that
    // follow it (data-live-with="<its id>": the case state, artifacts, findings) are re-fetched
    // whenever one of its rows ends, and once more when the last one does.
    var followers = leader.id ? [].slice.call(document.querySelectorAll('[data-live-with="' + leader.id + '"]')) : [];
    var last = activeCount(leader);
    function tick() {
      if (activeCount(leader) === 0 && leader.dataset.liveAlways !== "1") return;
      fetchFragment(leader).then(function (html) {
        replaceFragment(leader, html);
        var now = activeCount(leader);
        var refreshed = now !== last ? Promise.all(followers.map(function (f) {
          return fetchFragment(f).then(function (h) { replaceFragment(f, h); });
        })) : Promise.resolve();
        last = now;
        return refreshed;
      }).then(function () { setTimeout(tick, 2000); }, function () { setTimeout(tick, 5000); });
    }
    setTimeout(tick, 2000);
  }

  function initKeepEdits(el) {
    var mark = function () { el.dataset.edited = "1"; };
    el.addEventListener("input", mark);
    el.addEventListener("change", mark);
  }

  function initConfirm() {
    // Final or destructive actions ask first: <form data-confirm="…">. "%(choice)s" in the question
    // becomes the chosen option of the form's decision list. Dismissing sends nothing.
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
      var question = form.dataset.confirm;
      var select = form.querySelector("select[name=decision]");
      if (select && select.selectedIndex >= 0) {
        question = question.replace("%(choice)s", select.options[select.selectedIndex].text);
      }
      if (!window.confirm(question)) event.preventDefault();
    }, true);
  }

  function focusFirstInvalid() {
    // A form sent back with errors: take the person to the first field that needs them, or to
    // the form's own error when no single field is at fault.
    var field = document.querySelector('main [aria-invalid="true"]') || document.querySelector("main .errorlist.nonfield");
    if (field) {
      if (!field.matches("input, select, textarea")) field.setAttribute("tabindex", "-1");
      field.scrollIntoView({block: "center"});
      field.focus({preventScroll: true});
    }
  }

  function initPasskeyNaming(form) {
    // django-otp-webauthn's own script registers the passkey and announces it with this event;
    // the name typed beside its button is then saved through an ordinary form post (its action
    // holds "/0/" for the new passkey's id), which also reloads the list.
    document.addEventListener("otp_webauthn.register_complete", function (event) {
      var id = event.detail && event.detail.id;
      if (!id) { window.location.reload(); return; }
      form.action = form.dataset.actionTemplate.replace("/0/", "/" + encodeURIComponent(id) + "/");
      form.querySelector("input[name=name]").value = document.getElementById("passkey-new-name").value;
      form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var naming = document.getElementById("passkey-name-form");
    if (naming) initPasskeyNaming(naming);
    var box = document.getElementById("uploader");
    if (box) initUploader(box);
    [].forEach.call(document.querySelectorAll("[data-live-url]:not([data-live-with])"), initLive);
    [].forEach.call(document.querySelectorAll("[data-keep-edits]"), initKeepEdits);
    initConfirm();
    focusFirstInvalid();
  });
})();
