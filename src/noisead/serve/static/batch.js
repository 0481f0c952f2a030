// noisead viewer: a batch run's results (noisead serve --batch OUT_DIR), listed in the
// report's order (flagged first, then by score), filtered by decision, score and name, a
// page at a time; a click (or n / p) opens one in the viewer with its full-size outputs.
"use strict";

import { capitalised, decisionClass, element, getJSON } from "./api.js";

const PAGE = 50;
const TYPING_PAUSE_MS = 250;

export class BatchBrowser {
  constructor(el, { onOpen, onError }) {
    this.el = el; // the elements of the batch card (see viewer.js)
    this.onOpen = onOpen;
    this.onError = onError;
    this.offset = 0;
    this.total = 0;
    this.items = [];
    this.selected = null; // stem of the result shown
    this.generation = 0; // ignores a listing that a newer filter replaced
    this.opening = 0; // ignores a result that a newer click replaced
    const reload = () => {
      this.offset = 0;
      this.load();
    };
    let timer = 0;
    const typed = () => {
      clearTimeout(timer);
      timer = setTimeout(reload, TYPING_PAUSE_MS);
    };
    el.decision.addEventListener("change", reload);
    [el.minScore, el.maxScore, el.name].forEach((input) => input.addEventListener("input", typed));
    el.prev.addEventListener("click", () => this.page(-1));
    el.next.addEventListener("click", () => this.page(1));
  }

  async init() {
    const overview = await getJSON("/api/batch");
    const el = this.el;
    el.folder.textContent = overview.folder;
    const counts = Object.entries(overview.counts).map(([d, n]) => `${n} ${d}`);
    if (overview.failed) counts.push(`${overview.failed} failed`);
    if (overview.pending) counts.push(`${overview.pending} not analysed yet`);
    const models = overview.models.length ? ` — model ${overview.models.join(", ")}` : "";
    el.counts.textContent = counts.join(" · ") + models;
    el.card.hidden = false;
    await this.load();
  }

  query() {
    const q = new URLSearchParams({ offset: String(this.offset), limit: String(PAGE) });
    const el = this.el;
    if (el.decision.value) q.set("decision", el.decision.value);
    if (el.minScore.value !== "") q.set("min_score", el.minScore.value);
    if (el.maxScore.value !== "") q.set("max_score", el.maxScore.value);
    if (el.name.value.trim()) q.set("name", el.name.value.trim());
    return q;
  }

  async load() {
    const mine = ++this.generation;
    const el = this.el;
    let page;
    try {
      page = await getJSON("/api/batch/items?" + this.query());
    } catch (err) {
      if (mine === this.generation) {
        el.total.textContent = err.message;
        el.list.replaceChildren();
      }
      return false;
    }
    if (mine !== this.generation) return false;
    this.total = page.total;
    this.items = page.items;
    el.total.textContent =
      page.total === 0
        ? "No result matches these filters."
        : `${page.total} match${page.total === 1 ? "" : "es"}.`;
    el.list.replaceChildren(...page.items.map((item) => this.renderItem(item)));
    const pages = Math.max(1, Math.ceil(page.total / PAGE));
    el.page.textContent = `page ${Math.floor(this.offset / PAGE) + 1} of ${pages}`;
    el.prev.disabled = this.offset === 0;
    el.next.disabled = this.offset + PAGE >= page.total;
    el.card.dataset.loaded = String(this.generation);
    return true;
  }

  async page(delta) {
    const offset = this.offset + delta * PAGE;
    if (offset < 0 || offset >= this.total) return false;
    this.offset = offset;
    return this.load();
  }

  renderItem(item) {
    const li = document.createElement("li");
    li.dataset.stem = item.stem || "";
    li.dataset.decision = item.status === "failed" ? "failed" : item.decision;
    li.classList.toggle("selected", item.stem !== null && item.stem === this.selected);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "item";
    if (item.urls && item.urls.thumb) {
      const thumb = element("img", { className: "thumb", alt: "", loading: "lazy" });
      thumb.src = item.urls.thumb;
      button.append(thumb);
    }
    const name = item.display.split(/[\\/]/).pop();
    const title = element("span", { className: "item-title", textContent: name });
    title.title = item.display;
    const badge = element("span", { className: "badge" });
    const detail = element("span", { className: "item-detail" });
    if (item.status === "failed") {
      badge.textContent = "Failed";
      badge.classList.add("state-failed");
      detail.textContent = item.error || "";
      button.disabled = true;
    } else {
      badge.textContent = capitalised(item.decision);
      badge.classList.add(decisionClass(item.decision));
      detail.textContent = item.score === null ? "" : `score ${item.score.toFixed(3)}`;
      button.addEventListener("click", () => this.open(item));
    }
    button.append(title, badge, detail);
    li.append(button);
    return li;
  }

  async open(item) {
    const mine = ++this.opening;
    try {
      const data = await getJSON(item.urls.item);
      if (mine !== this.opening) return;
      this.selected = item.stem;
      for (const li of this.el.list.children) {
        li.classList.toggle("selected", li.dataset.stem === item.stem);
      }
      this.onOpen(data, item.display);
    } catch (err) {
      this.onError(err.message);
    }
  }

  /** Open the result ``delta`` places from the one shown, across pages; false at an end. */
  async step(delta) {
    const openable = () => this.items.filter((i) => i.urls);
    let at = openable().findIndex((i) => i.stem === this.selected);
    let next = openable()[at + delta];
    if (!next && (await this.page(delta))) {
      at = delta > 0 ? -1 : openable().length;
      next = openable()[at + delta];
    }
    if (!next) return false;
    await this.open(next);
    return true;
  }
}
