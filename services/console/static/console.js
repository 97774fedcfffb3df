// Hikeshi web console: the live timeline (Server-Sent Events) and forms
// sent without leaving the page (fetch). Every page works without it.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

// followTimeline adds each new event at the top of the timeline as the hub
// appends it, and redraws the incident's header.
function followTimeline(list) {
  const state = document.getElementById("live-state");
  const source = new EventSource(list.dataset.live);
  source.addEventListener("open", () => { state.textContent = "Live: new events appear as they happen."; });
  source.addEventListener("error", () => {
    // Closed: the hub refused the stream (signed out, or the incident is
    // no longer readable); otherwise the browser reconnects by itself.
    state.textContent = source.readyState === EventSource.CLOSED
      ? "Live updates stopped: reload the page (you may need to sign in again)."
      : "Live updates interrupted; reconnecting…";
  });
  source.addEventListener("entries", (e) => {
    const msg = JSON.parse(e.data);
    for (const html of msg.entries) {
      list.insertAdjacentHTML("afterbegin", html);
    }
    const head = document.getElementById("incident-head");
    if (head && msg.header) {
      head.outerHTML = msg.header;
    }
  });
}

function showErrors(form, err) {
  const slot = form.querySelector('[data-error-for="' + (err.field || "") + '"]');
  if (err.field && slot) {
    slot.textContent = err.message;
    const input = form.querySelector('[name="' + err.field + '"]');
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    return;
  }
  const problem = form.querySelector(".form-error");
  problem.textContent = err.message;
  problem.hidden = false;
}

function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((p) => { p.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
  const problem = form.querySelector(".form-error");
  if (problem) { problem.hidden = true; problem.textContent = ""; }
}

// remember sets what the forms (or only one) were seen to change from.
function remember(seen, only) {
  if (!seen) { return; }
  document.querySelectorAll("form[data-command]").forEach((form) => {
    const input = form.querySelector('input[name="seen"]');
    if (input && (!only || only === form) && form.dataset.command in seen) {
      input.value = seen[form.dataset.command];
    }
  });
}

// sendForm posts a command form; a refusal is shown next to its field and
// the input stays as typed.
async function sendForm(form, event) {
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  clearErrors(form);
  try {
    const res = await fetch(form.action, {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: new URLSearchParams(new FormData(form)),
    });
    const body = await res.json();
    if (!res.ok) {
      // After a conflict the person has been told what changed: the form
      // may be sent again against the incident as it is now.
      remember(body.seen, form);
      showErrors(form, body.error);
      return;
    }
    if (form.hasAttribute("data-reload")) {
      location.reload();
      return;
    }
    // The person's own change is what they now see.
    remember(body.seen);
    form.querySelectorAll("textarea, input:not([type=hidden])").forEach((i) => { i.value = ""; });
  } catch (e) {
    showErrors(form, { message: "The hub could not be reached; nothing was sent. Your input is kept: try again." });
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("entries");
  if (list && list.dataset.live && window.EventSource) {
    followTimeline(list);
  }
  document.querySelectorAll("form[data-command]").forEach((form) => {
    form.addEventListener("submit", (e) => sendForm(form, e));
  });
  // The time slider shows the incident where it is let go.
  document.querySelectorAll("input[data-autosubmit]").forEach((input) => {
    input.addEventListener("change", () => input.form.submit());
  });
});
