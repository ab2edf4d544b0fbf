// Comptoir's page behaviour. It lives here, not in the markup: the Content-Security-Policy
// (web/app.py) refuses inline scripts, on* attributes and eval, so htmx runs with allowEval
// off (base.html) and its hx-on handlers and [trigger filters] become listeners below.
// Everything listens on the document, so markup swapped in by htmx needs no set-up.
(() => {
  "use strict";

  // Conditions a request waits for, instead of hx-trigger filters (those need eval). An
  // element names one in data-request-if; a request it would start waits for the next trigger.
  const MIN_TYPED_SEARCH = 3;
  const conditions = {
    // Polls only while someone can see the page.
    visible: () => document.visibilityState === "visible",
    // The issue list refreshes itself only while no row is being checked and no list
    // request is under way.
    "issues-idle": () => !document.querySelector("#issues .issue-checking, #issues .htmx-request"),
    // The search box has its own triggers (typing, clearing); its change on blur would repeat
    // them. While typing, one or two characters ask for nothing: a term that short has no
    // trigram to look up, so the database reads every order for it (about 0.5 s at a million
    // orders, for a term the next keystroke replaces). Enter searches it all the same.
    "search-ready": (event) => {
      const box = event && event.target && event.target.type === "search" ? event.target : null;
      if (!box) return true;
      if (event.type === "change") return false;
      const typed = box.value.trim().length;
      // Enter fires the box's "search" and submits the form: the submit asks. "search" alone
      // asks when the box was emptied by its clear button.
      if (event.type === "search" && typed > 0) return false;
      return !(event.type === "input" && typed > 0 && typed < MIN_TYPED_SEARCH);
    },
  };

  document.addEventListener("htmx:confirm", (event) => {
    const name = event.detail.elt.getAttribute("data-request-if");
    const condition = name && conditions[name];
    if (condition && !condition(event.detail.triggeringEvent)) event.preventDefault();
  });

  // Filters leave their empty fields out of the request, and so out of the pushed URL.
  document.addEventListener("htmx:configRequest", (event) => {
    if (!event.target.closest("[data-drop-empty]")) return;
    const parameters = event.detail.parameters;
    for (const name of Object.keys(parameters)) {
      if (parameters[name] === "") delete parameters[name];
    }
  });

  // A button with data-confirm asks before it submits.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  // data-dismiss="selector": the button removes its closest ancestor matching it.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-dismiss]");
    if (button) button.closest(button.dataset.dismiss)?.remove();
  });

  // data-print: the button prints the page (the pick list; print CSS leaves the rest out).
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-print]")) window.print();
  });

  // data-copy="id": the button copies that field's value.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    const field = button && document.getElementById(button.dataset.copy);
    if (field && navigator.clipboard) navigator.clipboard.writeText(field.value);
  });

  // Phones start with the order filters folded away; wider screens keep them open. Once per
  // panel: a boosted visit brings a new one, a list swap does not touch it.
  const foldedPanels = new WeakSet();
  const foldFilters = (root) => {
    const panel = root.querySelector && root.querySelector("#filter-panel");
    if (!panel || foldedPanels.has(panel)) return;
    foldedPanels.add(panel);
    if (window.matchMedia("(max-width: 640px)").matches) panel.open = false;
  };

  // The order list's selection: "select the page" ticks every row, "all matching" only makes
  // sense once the whole page is ticked; the bar counts what will be sent.
  const syncSelection = () => {
    const results = document.getElementById("results");
    const bar = document.getElementById("bulk-bar");
    const page = document.getElementById("bulk-page");
    if (!results || !bar || !page) return;
    const all = document.getElementById("bulk-all");
    const boxes = Array.from(results.querySelectorAll("input[name=ids]"));
    const ticked = boxes.filter((box) => box.checked).length;
    const whole = ticked > 0 && ticked === boxes.length;
    page.checked = whole;
    page.indeterminate = ticked > 0 && !whole;
    if (all) {
      if (!whole) all.checked = false;
      all.closest("label").hidden = !whole;
    }
    const chosen = all && all.checked ? Number(bar.dataset.total) : ticked;
    document.getElementById("bulk-count").textContent = chosen;
    bar.dataset.selected = chosen;
  };

  document.addEventListener("change", (event) => {
    const results = document.getElementById("results");
    if (!results || !document.getElementById("bulk-bar") || !results.contains(event.target)) return;
    if (event.target.id === "bulk-page") {
      results.querySelectorAll("input[name=ids]").forEach((box) => {
        box.checked = event.target.checked;
      });
    }
    syncSelection();
  });

  // A bulk action accepted: close its menu and empty the reason and comment for the next one.
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (form.id !== "bulk-form" || event.detail.xhr.status >= 300) return;
    document.querySelectorAll("#bulk-bar details[open]").forEach((details) => {
      details.open = false;
    });
    for (const field of form.elements) {
      if (field.name === "reason" || field.name === "text") field.value = "";
    }
  });

  // data-focus-on-load: a form's error summary, swapped in below the fold, takes the focus
  // (and so the reader's eye) when it arrives.
  const focusErrors = (root) => {
    const summary = root.querySelector && root.querySelector("[data-focus-on-load]");
    if (summary) summary.focus();
  };

  // This script is deferred: the first page is parsed; htmx reports what it swaps in later.
  foldFilters(document);
  syncSelection();
  focusErrors(document);
  document.addEventListener("htmx:load", (event) => {
    foldFilters(event.target);
    syncSelection();
    focusErrors(event.target);
  });
})();
