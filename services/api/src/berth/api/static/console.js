// berth console: the little the server-rendered pages need from a script.
"use strict";

const COOKIE = "berth_token";

function token() {
  const found = document.cookie.split("; ").find((c) => c.startsWith(COOKIE + "="));
  return found ? decodeURIComponent(found.slice(COOKIE.length + 1)) : "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

function setupLogin() {
  const form = document.getElementById("login-form");
  if (!form) return;
  document.cookie = COOKIE + "=; path=/console; max-age=0";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = document.getElementById("token").value.trim();
    document.cookie = `${COOKIE}=${encodeURIComponent(value)}; path=/; SameSite=Strict`;
    location.href = "/console/";
  });
}

// Live phases: every row and phase badge of a workload follows its phase-changed events.
function setupLive() {
  const table = document.getElementById("workloads");
  if (!table) return;
  const project = table.dataset.live;
  const source = new EventSource("/console/events" + (project ? "?project=" + encodeURIComponent(project) : ""));
  let reload = null;
  // One workload's phase shown wherever the page shows it; false when the page has no row of it.
  const show = (subject, phase, message) => {
    const rows = document.querySelectorAll(`[data-id="${subject}"]`);
    rows.forEach((row) => {
      row.querySelectorAll(".phase").forEach((cell) => { cell.textContent = phase; cell.title = message; });
      if (row.id === "phase") row.textContent = phase;
      const allowed = { delete: true, suspend: !["Stopping", "Stopped", "Completed", "Failed", "Deleting", "Deleted"].includes(phase), resume: ["Stopping", "Stopped"].includes(phase) };
      if (["Deleting", "Deleted", "Terminating"].includes(phase)) allowed.delete = false;
      row.querySelectorAll("button[data-action]").forEach((b) => {
        const kindAllows = !(row.dataset.kind === "inference" && b.dataset.action !== "delete");
        b.disabled = !(allowed[b.dataset.action] && kindAllows);
      });
    });
    const badge = document.getElementById("phase");
    const mine = badge && badge.dataset.id === subject;
    if (mine) {
      badge.textContent = phase;
      const text = document.getElementById("phase-message");
      if (text) text.textContent = message;
    }
    return rows.length > 0 || mine;
  };
  // The workloads table shows the newest workloads: one it has not shown yet is new. A
  // workload's own page shows only that one and ignores the rest of its project.
  const listing = !document.getElementById("phase");
  const reloadSoon = () => {
    if (listing && !reload) reload = setTimeout(() => location.reload(), 500);
  };
  // The stream's first message, and one after each quiet spell: the phases as they are now, so
  // nothing that changed between rendering this page and connecting is missed.
  source.addEventListener("snapshot", (message) => {
    for (const w of JSON.parse(message.data).workloads) {
      if (!show(w.subject, w.phase, w.message || "")) reloadSoon();
    }
  });
  source.addEventListener("workload.phase-changed", (message) => {
    const event = JSON.parse(message.data);
    const phase = event.data.phase === "Deleted" ? "Deleting" : event.data.phase;
    if (!show(event.subject, phase, event.data.message || "")) reloadSoon(); // a workload this page has not shown
    const badge = document.getElementById("phase");
    const history = document.querySelector("#history tbody");
    if (badge && badge.dataset.id === event.subject && history) {
      const tr = document.createElement("tr");
      for (const text of [new Date(event.time).toLocaleTimeString(), event.data.phase, event.data.message || ""]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      history.appendChild(tr);
    }
  });
  table.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("[data-id]");
    const action = button.dataset.action;
    const base = `/api/v1/workloads/${row.dataset.collection}/${row.dataset.id}`;
    button.disabled = true;
    const answer = action === "delete" ? await api("DELETE", base) : await api("POST", `${base}/${action}`);
    if (answer.status >= 400) alert(`${action} refused: ${answer.body.message}`);
  });
  const filter = document.getElementById("phase-filter");
  if (filter) {
    filter.addEventListener("input", () => {
      const wanted = filter.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr[data-id]").forEach((tr) => {
        const phase = tr.querySelector(".phase").textContent.toLowerCase();
        tr.hidden = wanted !== "" && !phase.includes(wanted);
      });
    });
  }
}

// The submission form: the body in Run:ai's shape, a dry run as the user types, issues shown
// beside their fields.
function formBody(form) {
  const body = { spec: {} };
  for (const element of form.elements) {
    if (!element.name || element.value === "") continue;
    if (element.name === "dataSources") {
      const chosen = [...element.selectedOptions].map((o) => o.value);
      if (chosen.length) body.dataSources = chosen;
      continue;
    }
    const value = element.type === "number" ? Number(element.value) : element.value;
    if (!element.name.startsWith("spec.")) { body[element.name] = value; continue; }
    const path = element.name.slice(5).split(".");
    let node = body.spec;
    for (const part of path.slice(0, -1)) node = node[part] = node[part] || {};
    node[path[path.length - 1]] = value;
  }
  return body;
}

function showIssues(form, issues) {
  form.querySelectorAll(".issue").forEach((el) => { el.textContent = ""; });
  const others = [];
  for (const issue of issues) {
    const field = issue.field.replace(/^spec\./, "");
    const slot = form.querySelector(`.issue[data-field="${CSS.escape(field)}"]`);
    if (slot) slot.textContent = issue.details;
    else others.push(`${issue.field}: ${issue.details}`);
  }
  document.getElementById("other-issues").textContent = others.join("; ");
}

function setupForm() {
  const form = document.getElementById("submit-form");
  if (!form) return;
  const path = `/api/v1/workloads/${form.dataset.collection}`;
  let timer = null;
  const check = async () => {
    const body = formBody(form);
    if (!body.name) body.name = "dry-run-check";
    const answer = await api("POST", path + "?dryRun=true", body);
    showIssues(form, answer.status === 200 ? [] : (answer.body.complianceIssues || [{ field: "", details: answer.body.message }]));
    form.dataset.checked = String(Date.now());
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const answer = await api("POST", path, formBody(form));
    if (answer.status === 200) location.href = `/console/workloads/${answer.body.workloadId}`;
    else showIssues(form, answer.body.complianceIssues || [{ field: "", details: answer.body.message }]);
  });
  check();
}

document.addEventListener("DOMContentLoaded", () => { setupLogin(); setupLive(); setupForm(); });
