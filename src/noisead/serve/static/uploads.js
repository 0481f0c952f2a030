// noisead viewer: several photos at once. Files wait in the page ("queued") and go to the
// server a few at a time, never more than its queue admits (/api/info's max_pending); when
// the server is busy anyway (503, other analysts) the page waits as long as it says and
// tries again. Each photo keeps its line in the list: queued, analysing, waiting, its
// decision, or why it failed; a done one opens with a click, or with n / p.
"use strict";

import {
  ApiError,
  analyse,
  capitalised,
  decisionClass,
  element,
  formatBytes,
  getJSON,
} from "./api.js";

const MAX_IN_FLIGHT = 2; // one analysing, one waiting its turn on the server
const RETRY_CAP_S = 5; // a slot often frees before the server's worst-case Retry-After

const STATE_WORDS = {
  queued: "Queued",
  analysing: "Analysing…",
  waiting: "Server busy, waiting",
  failed: "Failed",
};

export class UploadQueue {
  constructor(el, { onResult, onFailure, onSelect, mode, parts = () => "default" }) {
    this.el = el; // {card, list, summary, status}
    this.items = [];
    this.inFlight = 0;
    this.limit = 1;
    this.maxUploadBytes = null;
    this.pausedUntil = 0;
    this.follow = false; // show the next result that arrives (until the analyst picks one)
    this.selected = null;
    this.onResult = onResult;
    this.onFailure = onFailure;
    this.onSelect = onSelect;
    this.mode = mode;
    this.parts = parts;
  }

  configure(info) {
    this.maxUploadBytes = info.max_upload_bytes;
    this.limit = Math.max(1, Math.min(MAX_IN_FLIGHT, info.max_pending || 1));
  }

  add(files) {
    this.follow = true;
    for (const file of files) {
      const item = { file, name: file.name, state: "queued", data: null, error: null };
      item.li = this.renderItem(item);
      this.updateItem(item);
      this.items.push(item);
      this.el.list.append(item.li);
      if (this.maxUploadBytes !== null && file.size > this.maxUploadBytes) {
        const limit = formatBytes(this.maxUploadBytes);
        this.failed(item, `${file.name} is ${formatBytes(file.size)}; the limit is ${limit}.`);
      }
    }
    if (this.items.length > 1) this.el.card.hidden = false; // one photo needs no list
    this.pump();
  }

  pump() {
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), wait);
    } else {
      while (this.inFlight < this.limit) {
        // In list order; a photo the server asked to wait is due again once the pause is
        // over, whichever of its timer and this one fires first.
        const next = this.items.find((i) => i.state === "queued" || i.state === "waiting");
        if (!next) break;
        this.start(next);
      }
    }
    this.summarise();
  }

  async start(item) {
    this.inFlight += 1;
    this.setState(item, "analysing");
    try {
      item.data = await analyse(item.file, this.mode(), this.parts());
      item.state = "done";
      this.updateItem(item);
      if (this.follow) {
        this.follow = false;
        this.select(item);
      }
      this.onResult(item);
    } catch (err) {
      if (err instanceof ApiError && err.status === 503 && err.retryAfter) {
        this.pausedUntil = Date.now() + 1000 * Math.min(err.retryAfter, RETRY_CAP_S);
        this.setState(item, "waiting");
        setTimeout(() => {
          if (item.state === "waiting") this.setState(item, "queued");
          this.pump();
        }, Math.max(0, this.pausedUntil - Date.now()));
      } else {
        this.failed(item, err instanceof ApiError
          ? err.message
          : `The upload failed: is the noisead server still running? (${err})`);
      }
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }

  failed(item, message) {
    item.state = "failed";
    item.error = message;
    this.updateItem(item);
    const busy = (i) => ["queued", "analysing", "waiting"].includes(i.state);
    if (this.follow && !this.items.some((i) => i !== item && busy(i))) this.follow = false;
    this.onFailure(item);
  }

  setState(item, state) {
    item.state = state;
    this.updateItem(item);
    this.summarise();
  }

  renderItem(item) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "item";
    button.addEventListener("click", () => {
      this.follow = false;
      this.select(item);
    });
    const name = element("span", { className: "item-title", textContent: item.name });
    const badge = element("span", { className: "badge" });
    const detail = element("span", { className: "item-detail" });
    button.append(name, badge, detail);
    li.append(button);
    return li;
  }

  updateItem(item) {
    const li = item.li;
    li.dataset.state = item.state;
    const [, badge, detail] = li.querySelector("button").children;
    if (item.state === "done") {
      const d = item.data.decision;
      badge.textContent = capitalised(d.decision);
      badge.className = "badge " + decisionClass(d.decision);
      const score = item.data.score;
      detail.textContent = typeof score === "number" ? `score ${score.toFixed(3)}` : "";
    } else {
      badge.textContent = STATE_WORDS[item.state];
      badge.className = "badge state-" + item.state;
      detail.textContent = item.state === "failed" ? item.error : "";
    }
    li.querySelector("button").disabled = item.state !== "done" && item.state !== "failed";
  }

  summarise() {
    const n = (s) => this.items.filter((i) => i.state === s).length;
    const parts = [`${n("done")} analysed`];
    if (n("failed")) parts.push(`${n("failed")} failed`);
    const busy = n("analysing");
    const waiting = n("queued") + n("waiting");
    if (busy) parts.push(`${busy} analysing`);
    if (waiting) parts.push(`${waiting} queued`);
    this.el.summary.textContent = parts.join(", ") + ` of ${this.items.length}.`;
    const running = this.items.find((i) => i.state === "analysing");
    if (running) {
      const size = formatBytes(running.file.size);
      this.el.status.textContent = `Analysing ${running.name} (${size})…`;
      this.el.status.classList.add("busy");
    } else if (this.items.length && !waiting) {
      this.el.status.classList.remove("busy");
      const last = this.items[this.items.length - 1];
      this.el.status.textContent =
        this.items.length === 1 && last.state === "done"
          ? `${last.name}: analysed in ${last.data.seconds.toFixed(2)} s.`
          : this.items.length === 1
          ? `Could not analyse ${last.name}.`
          : this.el.summary.textContent;
    }
  }

  /** Show ``item``: its result, or (for a failure) its reason. */
  async select(item) {
    this.selected = item;
    this.items.forEach((i) => i.li.classList.toggle("selected", i === item));
    if (item.state === "failed") return this.onFailure(item, true);
    if (item.state !== "done") return;
    try {
      await getJSON(`/api/result/${item.data.id}`); // still kept by the server?
      if (this.selected !== item) return; // another was chosen meanwhile
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // only the most recent analyses are kept: analyse this one again
        item.data = null;
        this.follow = true;
        this.setState(item, "queued");
        this.pump();
        return;
      }
    }
    this.onSelect(item);
  }

  /** The done (or failed) photo ``delta`` places from the one shown; false at an end. */
  step(delta) {
    const open = this.items.filter((i) => i.state === "done" || i.state === "failed");
    const at = open.indexOf(this.selected);
    const next = open[at + delta];
    if (!next) return false;
    this.follow = false;
    this.select(next);
    return true;
  }
}
