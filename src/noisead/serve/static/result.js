// noisead viewer: one result on the page, from an upload or from a batch run. The verdict
// is the server's (the shared decision and its sentence): nothing is judged here. The mask
// and the evidence breakdown are recomputed from the 16-bit heatmap and the evidence codes
// when the threshold slider moves, with the server's arithmetic.
"use strict";

import { capitalised, element } from "./api.js";

/** Pixels of a same-origin PNG as RGBA bytes (resolves to null when it cannot load). */
function loadPixels(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const c = document.createElement("canvas");
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(img, 0, 0);
      resolve({ px: ctx.getImageData(0, 0, c.width, c.height).data, img });
    };
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

/** The shares in words, largest first, as the command line prints them. */
export function evidenceText(shares) {
  return Object.entries(shares || {})
    .filter(([, v]) => v >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${Math.round(100 * v)}%`)
    .join(", ");
}

export class ResultView {
  constructor(el, views) {
    this.el = el;
    this.views = views;
    this.current = null;
    this.generation = 0; // ignores images of a result that a newer one replaced
    this.pending = false;
    el.opacity.addEventListener("input", () => this.applyOpacity());
    el.threshold.addEventListener("input", () => this.thresholdMoved());
    el.swipeLayer.addEventListener("change", () => this.applySwipeLayer());
    this.applyOpacity();
  }

  show(data, label) {
    const mine = ++this.generation;
    const el = this.el;
    this.current = { data, heat: null, codes: null, width: data.width, height: data.height };
    const verdict = data.decision;
    el.itemName.textContent = label || "";
    el.decision.textContent = capitalised(verdict.decision);
    el.verdict.textContent = verdict.text;
    const judged = typeof data.score === "number"; // no score when it cannot be judged
    el.scoreBox.hidden = !judged;
    el.score.textContent = judged ? data.score.toFixed(3) : "";
    el.caveat.textContent = data.caveat;
    const card = el.score.closest(".score-card");
    card.className = card.className.replace(/\blevel-\S+/g, "").trim();
    card.classList.add("level-" + verdict.decision.replace(/ /g, "-"));
    el.model.textContent = data.model;
    el.modeUsed.textContent = data.mode;
    el.partsUsed.textContent = data.statistics_parts === "auto" ? "two parts" : "whole photo";
    el.size.textContent = data.width ? `${data.width} × ${data.height} pixels` : "–";
    const timed = typeof data.seconds === "number";
    el.seconds.textContent = timed ? `${data.seconds.toFixed(2)} s` : "–";
    const notes = [...(data.notes || [])];
    if (data.photo && !data.photo.original) {
      notes.push(`Photo: its thumbnail (${data.photo.note}).`);
    }
    el.notes.replaceChildren(...notes.map((n) => element("li", { textContent: n })));
    this.showDownloads(data);
    // An input judged without an analysis (smaller than one patch) has no maps to show.
    const analysed = Number.isFinite(data.width) && data.width > 0 && Boolean(data.urls.heatmap);
    el.viewsCard.hidden = !analysed;
    el.results.hidden = false;
    if (!analysed) {
      el.evidenceList.replaceChildren();
      el.evidenceLine.textContent = "No maps: this image was judged without an analysis.";
      return;
    }

    const urls = data.urls;
    [el.photo, el.base, el.swipeBase].forEach((img) => (img.src = urls.image));
    el.overlay.src = urls.heatmap || "";
    el.fingerprint.src = urls.fingerprint || "";
    el.threshold.value = String(data.threshold);
    el.thresholdValue.textContent = Number(data.threshold).toFixed(3);
    const live = Boolean(urls.heatmap_data);
    el.threshold.disabled = !live;
    el.thresholdHint.textContent = live
      ? "The heatmap is calibrated: 0.99 marks a pixel more unusual than 99% of the " +
        "pixels of untouched photos."
      : `The mask of the batch run, at its threshold ${Number(data.threshold).toFixed(3)}.`;
    [el.mask, el.swipeMask].forEach((c) => {
      c.width = data.width;
      c.height = data.height;
    });
    el.mask.dataset.ready = "false";
    this.renderEvidence(data.evidence_in_mask, data.threshold);
    this.applySwipeLayer();
    this.views.setImage(data.width, data.height);

    if (live) {
      loadPixels(urls.heatmap_data).then((got) => {
        if (mine !== this.generation) return;
        if (!got) return this.fail("Could not load the heatmap for the mask.");
        const heat = new Uint16Array(data.width * data.height);
        for (let i = 0, j = 0; i < heat.length; i++, j += 4) {
          heat[i] = got.px[j] * 256 + got.px[j + 1];
        }
        this.current.heat = heat;
        this.drawMask();
      });
      if (urls.evidence_data) {
        loadPixels(urls.evidence_data).then((got) => {
          if (mine !== this.generation || !got) return;
          const codes = new Uint8Array(data.width * data.height);
          for (let i = 0, j = 0; i < codes.length; i++, j += 4) codes[i] = got.px[j];
          this.current.codes = codes;
          this.drawMask();
        });
      }
    } else if (urls.mask) {
      loadPixels(urls.mask).then((got) => {
        if (mine !== this.generation) return;
        if (!got) return this.fail("Could not load the mask.");
        const ctx = el.mask.getContext("2d");
        ctx.drawImage(got.img, 0, 0, data.width, data.height);
        let marked = 0;
        for (let j = 0; j < got.px.length; j += 4) marked += got.px[j] > 127;
        this.maskDrawn(marked, got.px.length / 4);
      });
    }
  }

  fail(message) {
    this.el.error.textContent = message;
    this.el.error.hidden = false;
  }

  showDownloads(data) {
    const el = this.el;
    const zip = data.urls.zip;
    el.download.hidden = !zip;
    el.downloadHint.hidden = !zip;
    if (zip) this.updateDownload();
    const links = data.downloads || Object.entries(data.urls)
      .filter(([k]) => ["heatmap", "heatmap_gray", "mask", "overlay", "fingerprint"].includes(k))
      .map(([k, url]) => ({ kind: k.replace("_", "-"), name: k.replace("_", "-") + ".png", url }));
    el.outputs.replaceChildren(
      ...links.map((d) => {
        const a = document.createElement("a");
        a.href = d.url;
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = d.name;
        a.dataset.kind = d.kind;
        const li = document.createElement("li");
        li.append(a);
        return li;
      })
    );
  }

  updateDownload() {
    const c = this.current;
    if (!c || !c.data.urls.zip) return;
    const t = this.el.threshold.value;
    const url = c.data.urls.zip;
    this.el.download.href =
      Number(t) === Number(c.data.threshold) ? url : `${url}?threshold=${encodeURIComponent(t)}`;
  }

  thresholdMoved() {
    this.el.thresholdValue.textContent = Number(this.el.threshold.value).toFixed(3);
    this.updateDownload();
    if (this.pending) return; // one redraw per frame however fast the slider moves
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.drawMask();
    });
  }

  drawMask() {
    const c = this.current;
    if (!c || !c.heat) return;
    const t = parseFloat(this.el.threshold.value);
    const { heat, codes, width, height } = c;
    const ctx = this.el.mask.getContext("2d");
    const out = ctx.createImageData(width, height);
    const buf = out.data;
    const counts = new Array(c.data.evidence_names ? c.data.evidence_names.length : 0).fill(0);
    let marked = 0;
    for (let i = 0, j = 0; i < heat.length; i++, j += 4) {
      const on = heat[i] / 65535 >= t; // the server's test, in the same float64 arithmetic
      const v = on ? 255 : 0;
      if (on) {
        marked += 1;
        if (codes && codes[i] < counts.length) counts[codes[i]] += 1;
      }
      buf[j] = v;
      buf[j + 1] = v;
      buf[j + 2] = v;
      buf[j + 3] = 255;
    }
    ctx.putImageData(out, 0, 0);
    if (codes) {
      const total = counts.reduce((a, b) => a + b, 0);
      const shares = {};
      if (total) {
        c.data.evidence_names.forEach((name, k) => {
          shares[name] = Math.round((10000 * counts[k]) / total) / 10000; // as round(x, 4)
        });
      }
      this.renderEvidence(shares, t);
    }
    this.maskDrawn(marked, heat.length);
  }

  maskDrawn(marked, total) {
    const el = this.el;
    el.swipeMask.getContext("2d").drawImage(el.mask, 0, 0);
    const fraction = marked / total;
    el.maskFraction.textContent = (100 * fraction).toFixed(fraction < 0.001 ? 3 : 1) + "%";
    el.mask.dataset.marked = String(marked);
    el.mask.dataset.ready = "true";
  }

  /** What set the scores inside the mask: one bar per statistic, largest first. */
  renderEvidence(shares, threshold) {
    const el = this.el;
    const entries = Object.entries(shares || {}).sort((a, b) => b[1] - a[1]);
    const words = evidenceText(shares);
    el.evidenceLine.textContent = words
      ? `Set by: ${words} (at threshold ${Number(threshold).toFixed(3)}).`
      : `Nothing is marked at threshold ${Number(threshold).toFixed(3)}.`;
    el.evidenceList.replaceChildren(
      ...entries.map(([name, share]) => {
        const li = document.createElement("li");
        li.dataset.name = name;
        li.dataset.share = String(share);
        const label = element("span", { className: "ev-name", textContent: name });
        const bar = element("span", { className: "ev-bar" });
        const fill = element("span", { className: "ev-fill" });
        fill.style.width = (100 * share).toFixed(1) + "%";
        bar.append(fill);
        const value = element("span", {
          className: "ev-value",
          textContent: Math.round(100 * share) + "%",
        });
        li.append(label, bar, value);
        return li;
      })
    );
  }

  applyOpacity() {
    this.el.overlay.style.opacity = this.el.opacity.value;
    this.el.opacityValue.textContent = Number(this.el.opacity.value).toFixed(2);
  }

  applySwipeLayer() {
    const el = this.el;
    const layer = el.swipeLayer.value;
    const urls = this.current ? this.current.data.urls : {};
    el.swipeMask.hidden = layer !== "mask";
    el.swipeImg.hidden = layer === "mask";
    if (layer !== "mask") el.swipeImg.src = urls[layer] || "";
    el.views.dataset.swipeLayer = layer;
  }
}
