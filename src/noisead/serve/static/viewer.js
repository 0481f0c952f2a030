// noisead viewer: the page's entry point. Wires the uploads (several photos at once), the
// batch browser (noisead serve --batch), the result shown and its linked views.
// Plain JavaScript modules, no framework, nothing loaded from other origins.
"use strict";

import { formatBytes, getJSON } from "./api.js";
import { BatchBrowser } from "./batch.js";
import { ResultView } from "./result.js";
import { UploadQueue } from "./uploads.js";
import { LinkedViews } from "./views.js";

const $ = (id) => document.getElementById(id);

const views = new LinkedViews({
  views: $("results"),
  side: $("views-side"),
  swipe: $("views-swipe"),
  swipeTop: $("swipe-top"),
  swipeHandle: $("swipe-handle"),
  swipePosition: $("swipe-position"),
  zoomLevel: $("zoom-level"),
  zoomIn: $("zoom-in"),
  zoomOut: $("zoom-out"),
  zoomFit: $("zoom-fit"),
  layoutSide: $("layout-side"),
  layoutSwipe: $("layout-swipe"),
});

const result = new ResultView(
  {
    results: $("results"),
    views: $("results"),
    viewsCard: document.querySelector(".views-card"),
    itemName: $("item-name"),
    decision: $("decision"),
    scoreBox: $("score-box"),
    score: $("score"),
    verdict: $("verdict"),
    caveat: $("caveat"),
    model: $("model-name"),
    modeUsed: $("mode-used"),
    partsUsed: $("parts-used"),
    size: $("image-size"),
    seconds: $("seconds"),
    notes: $("notes"),
    evidenceLine: $("evidence-line"),
    evidenceList: $("evidence-list"),
    download: $("download-all"),
    downloadHint: $("download-hint"),
    outputs: $("outputs"),
    photo: $("photo-img"),
    base: $("base-img"),
    overlay: $("overlay-img"),
    fingerprint: $("fingerprint-img"),
    swipeBase: $("swipe-base"),
    swipeImg: $("swipe-img"),
    swipeMask: $("swipe-mask"),
    swipeLayer: $("swipe-layer"),
    opacity: $("opacity"),
    opacityValue: $("opacity-value"),
    threshold: $("threshold"),
    thresholdValue: $("threshold-value"),
    thresholdHint: $("threshold-hint"),
    mask: $("mask-canvas"),
    maskFraction: $("mask-fraction"),
    error: $("error"),
  },
  views
);

const error = $("error");
function showError(message) {
  error.textContent = message;
  error.hidden = false;
}
function clearError() {
  error.textContent = "";
  error.hidden = true;
}

// Which list the shown result came from: n / p and the arrows step through that one.
let activeList = null;

const uploads = new UploadQueue(
  { card: $("files-card"), list: $("file-list"), summary: $("files-summary"), status: $("status") },
  {
    mode: () => $("mode").value,
    parts: () => $("parts").value,
    onResult: () => {},
    onFailure: (item, chosen) => {
      // one photo: its reason here; several: in its line of the list (and here when chosen)
      if (uploads.items.length === 1) showError(item.error);
      else if (chosen) showError(`${item.name}: ${item.error}`);
      if (chosen) activeList = uploads;
    },
    onSelect: (item) => {
      clearError();
      activeList = uploads;
      batch.selected = null;
      result.show(item.data, item.name);
    },
  }
);

const batch = new BatchBrowser(
  {
    card: $("batch-card"),
    folder: $("batch-folder"),
    counts: $("batch-counts"),
    decision: $("batch-decision"),
    minScore: $("batch-min-score"),
    maxScore: $("batch-max-score"),
    name: $("batch-name"),
    total: $("batch-total"),
    list: $("batch-list"),
    prev: $("batch-prev-page"),
    next: $("batch-next-page"),
    page: $("batch-page"),
  },
  {
    onOpen: (data, label) => {
      clearError();
      activeList = batch;
      uploads.selected = null;
      uploads.items.forEach((i) => i.li.classList.remove("selected"));
      result.show(data, label);
    },
    onError: showError,
  }
);

getJSON("/api/info")
  .then((info) => {
    uploads.configure(info);
    $("limits").textContent += " · up to " + formatBytes(info.max_upload_bytes);
    if (info.batch) return batch.init();
    return null;
  })
  .catch((err) => showError(err.message));

// -- adding photos ----------------------------------------------------------------------
const fileInput = $("file-input");
const drop = $("drop-zone");
function add(files) {
  if (!files || !files.length) return;
  clearError();
  uploads.add([...files]);
}
fileInput.addEventListener("change", () => {
  add(fileInput.files);
  fileInput.value = ""; // choosing the same files again must analyse them again
});
["dragenter", "dragover"].forEach((type) =>
  drop.addEventListener(type, (ev) => {
    ev.preventDefault();
    drop.classList.add("dragging");
  })
);
["dragleave", "drop"].forEach((type) =>
  drop.addEventListener(type, () => drop.classList.remove("dragging"))
);
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  add(ev.dataTransfer && ev.dataTransfer.files);
});
// A photo dropped beside the zone must not make the browser navigate away.
window.addEventListener("dragover", (ev) => ev.preventDefault());
window.addEventListener("drop", (ev) => ev.preventDefault());

// -- stepping through the list ----------------------------------------------------------
function step(delta) {
  if (activeList) activeList.step(delta);
}
$("prev-item").addEventListener("click", () => step(-1));
$("next-item").addEventListener("click", () => step(1));
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.closest("input, select, textarea")) return;
  if (ev.key === "n") step(1);
  else if (ev.key === "p") step(-1);
});
