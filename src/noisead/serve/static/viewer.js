// noisead viewer: upload a photo to the local server, show its results.
// Plain JavaScript, no framework, nothing loaded from other origins.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    drop: $("drop-zone"),
    file: $("file-input"),
    mode: $("mode"),
    limits: $("limits"),
    status: $("status"),
    error: $("error"),
    results: $("results"),
    decision: $("decision"),
    scoreBox: $("score-box"),
    score: $("score"),
    verdict: $("verdict"),
    caveat: $("caveat"),
    model: $("model-name"),
    modeUsed: $("mode-used"),
    size: $("image-size"),
    seconds: $("seconds"),
    notes: $("notes"),
    download: $("download-all"),
    base: $("base-img"),
    overlay: $("overlay-img"),
    opacity: $("opacity"),
    opacityValue: $("opacity-value"),
    threshold: $("threshold"),
    thresholdValue: $("threshold-value"),
    mask: $("mask-canvas"),
    maskFraction: $("mask-fraction"),
    fingerprint: $("fingerprint-img"),
  };

  // This server's secret for uploads: it is in the page the server rendered, which no
  // other origin can read, and goes back in a header with every upload.
  const token = document.querySelector('meta[name="noisead-token"]').content;
  let maxUploadBytes = null;
  let current = null; // {data, heat: Uint16Array|null, width, height}
  let generation = 0; // ignores answers to uploads that a newer one replaced

  function formatBytes(n) {
    if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
    return n + " bytes";
  }

  function setStatus(text, busy) {
    el.status.textContent = text;
    el.status.classList.toggle("busy", Boolean(busy));
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = false;
  }

  function clearError() {
    el.error.textContent = "";
    el.error.hidden = true;
  }

  fetch("/api/info")
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => {
      if (!info) return;
      maxUploadBytes = info.max_upload_bytes;
      el.limits.textContent += " · up to " + formatBytes(maxUploadBytes);
    })
    .catch(() => {});

  // -- upload -------------------------------------------------------------------------
  el.file.addEventListener("change", () => {
    if (el.file.files && el.file.files[0]) upload(el.file.files[0]);
    el.file.value = ""; // choosing the same file again must analyse it again
  });

  ["dragenter", "dragover"].forEach((type) =>
    el.drop.addEventListener(type, (ev) => {
      ev.preventDefault();
      el.drop.classList.add("dragging");
    })
  );
  ["dragleave", "drop"].forEach((type) =>
    el.drop.addEventListener(type, () => el.drop.classList.remove("dragging"))
  );
  el.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const files = ev.dataTransfer && ev.dataTransfer.files;
    if (files && files[0]) upload(files[0]);
  });
  // A photo dropped beside the zone must not make the browser navigate away.
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => ev.preventDefault());

  async function upload(file) {
    const mine = ++generation;
    clearError();
    if (maxUploadBytes !== null && file.size > maxUploadBytes) {
      setStatus("Not analysed.");
      showError(
        `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(maxUploadBytes)}.`
      );
      return;
    }
    setStatus(`Analysing ${file.name} (${formatBytes(file.size)})…`, true);
    const form = new FormData();
    form.append("image", file);
    form.append("mode", el.mode.value);
    let response, data;
    try {
      response = await fetch("/api/analyze", {
        method: "POST",
        body: form,
        headers: { "X-Noisead-Token": token },
        credentials: "same-origin",
      });
      data = await response.json().catch(() => null);
    } catch (err) {
      if (mine !== generation) return;
      setStatus("Not analysed.");
      showError("The upload failed: is the noisead server still running? (" + err + ")");
      return;
    }
    if (mine !== generation) return;
    if (!response.ok || !data || data.error) {
      setStatus(`Could not analyse ${file.name}.`);
      showError((data && data.error) || `The server answered ${response.status}.`);
      return;
    }
    setStatus(`${file.name}: analysed in ${data.seconds.toFixed(2)} s.`);
    show(data, mine);
  }

  // -- results ------------------------------------------------------------------------
  function show(data, mine) {
    current = { data, heat: null, width: data.width, height: data.height };

    // The shared verdict, as the server decided and worded it: nothing is judged here.
    const verdict = data.decision;
    el.decision.textContent = verdict.decision.charAt(0).toUpperCase() + verdict.decision.slice(1);
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
    el.size.textContent = `${data.width} × ${data.height} pixels`;
    el.seconds.textContent = `${data.seconds.toFixed(2)} s`;
    el.notes.replaceChildren(
      ...(data.notes || []).map((n) => {
        const li = document.createElement("li");
        li.textContent = n;
        return li;
      })
    );

    el.base.src = data.urls.image;
    el.overlay.src = data.urls.heatmap;
    el.fingerprint.src = data.urls.fingerprint;
    el.threshold.value = String(data.threshold);
    el.thresholdValue.textContent = Number(data.threshold).toFixed(3);
    el.mask.width = data.width;
    el.mask.height = data.height;
    el.mask.dataset.ready = "false";
    updateDownload();
    el.results.hidden = false;

    // The heatmap at 16 bits (red = high byte, green = low byte): the mask is recomputed
    // here from exactly the values the server thresholds.
    const img = new Image();
    img.onload = () => {
      if (mine !== generation) return;
      const c = document.createElement("canvas");
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      const heat = new Uint16Array(c.width * c.height);
      for (let i = 0, j = 0; i < heat.length; i++, j += 4) heat[i] = px[j] * 256 + px[j + 1];
      current.heat = heat;
      drawMask();
    };
    img.onerror = () => {
      if (mine === generation) showError("Could not load the heatmap for the mask.");
    };
    img.src = data.urls.heatmap_data;
  }

  function drawMask() {
    if (!current || !current.heat) return;
    const t = parseFloat(el.threshold.value);
    const { heat, width, height } = current;
    const ctx = el.mask.getContext("2d");
    const out = ctx.createImageData(width, height);
    const buf = out.data;
    let marked = 0;
    for (let i = 0, j = 0; i < heat.length; i++, j += 4) {
      const on = heat[i] / 65535 >= t; // the server's test, in the same float64 arithmetic
      const v = on ? 255 : 0;
      marked += on;
      buf[j] = v;
      buf[j + 1] = v;
      buf[j + 2] = v;
      buf[j + 3] = 255;
    }
    ctx.putImageData(out, 0, 0);
    const fraction = marked / heat.length;
    el.maskFraction.textContent = (100 * fraction).toFixed(fraction < 0.001 ? 3 : 1) + "%";
    el.mask.dataset.marked = String(marked);
    el.mask.dataset.ready = "true";
  }

  function updateDownload() {
    if (!current) return;
    const t = el.threshold.value;
    const url = current.data.urls.zip;
    el.download.href =
      Number(t) === Number(current.data.threshold) ? url : `${url}?threshold=${encodeURIComponent(t)}`;
  }

  // -- controls -------------------------------------------------------------------------
  function applyOpacity() {
    el.overlay.style.opacity = el.opacity.value;
    el.opacityValue.textContent = Number(el.opacity.value).toFixed(2);
  }
  el.opacity.addEventListener("input", applyOpacity);
  applyOpacity();

  let pending = false;
  el.threshold.addEventListener("input", () => {
    el.thresholdValue.textContent = Number(el.threshold.value).toFixed(3);
    updateDownload();
    if (pending) return; // one redraw per frame however fast the slider moves
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      drawMask();
    });
  });
})();
