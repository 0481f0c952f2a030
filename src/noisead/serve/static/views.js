// noisead viewer: linked views. One zoom and one centre, in image pixels, shared by every
// view (photo, heatmap, mask, fingerprint, and the swipe comparison): a wheel or a drag
// on any of them moves all of them, so the same spot of the photo stays under the eye.
"use strict";

const MAX_ZOOM = 64; // times the fitted size
const WHEEL_SPEED = 0.0015;

export class LinkedViews {
  constructor(el) {
    this.el = el; // {views, side, swipe, swipeTop, swipeHandle, swipePosition, zoomLevel, ...}
    this.width = 1;
    this.height = 1;
    this.zoom = 1;
    this.cx = 0.5;
    this.cy = 0.5;
    this.drag = null;
    this.frame = 0;
    this.views().forEach((view) => this.attach(view));
    const resize = new ResizeObserver(() => this.schedule());
    this.views().forEach((view) => resize.observe(view));
    el.zoomIn.addEventListener("click", () => this.zoomBy(2));
    el.zoomOut.addEventListener("click", () => this.zoomBy(0.5));
    el.zoomFit.addEventListener("click", () => this.fit());
    el.layoutSide.addEventListener("click", () => this.layout("side"));
    el.layoutSwipe.addEventListener("click", () => this.layout("swipe"));
    el.swipePosition.addEventListener("input", () => this.applySwipe());
    this.attachHandle();
    document.addEventListener("keydown", (ev) => this.key(ev));
    this.applySwipe();
  }

  views() {
    return [...this.el.views.querySelectorAll(".view")];
  }

  /** A new image: its size in pixels; the views go back to fitting it. */
  setImage(width, height) {
    this.width = width;
    this.height = height;
    this.views().forEach((view) =>
      view.querySelectorAll(".view-content").forEach((content) => {
        content.style.width = width + "px";
        content.style.height = height + "px";
      })
    );
    this.fit();
  }

  fit() {
    this.zoom = 1;
    this.cx = this.width / 2;
    this.cy = this.height / 2;
    this.render();
  }

  /** Each view's own fitted scale: views of different sizes show the same spot. */
  geometry(view) {
    const vw = view.clientWidth || 1;
    const vh = view.clientHeight || 1;
    const scale = Math.min(vw / this.width, vh / this.height) * this.zoom;
    return { vw, vh, scale, tx: vw / 2 - this.cx * scale, ty: vh / 2 - this.cy * scale };
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    for (const view of this.views()) {
      if (!view.offsetParent) continue; // hidden: drawn when it is shown
      const g = this.geometry(view);
      const transform = `translate(${g.tx}px, ${g.ty}px) scale(${g.scale})`;
      view.querySelectorAll(".view-content").forEach((c) => (c.style.transform = transform));
      view.classList.toggle("zoomed", this.zoom > 1);
    }
    const shown = this.zoom <= 1.0001 ? "fit" : "×" + this.zoom.toFixed(this.zoom < 10 ? 1 : 0);
    this.el.zoomLevel.textContent = shown;
    Object.assign(this.el.views.dataset, {
      zoom: String(this.zoom),
      cx: String(this.cx),
      cy: String(this.cy),
    });
  }

  clamp() {
    this.zoom = Math.min(MAX_ZOOM, Math.max(1, this.zoom));
    if (this.zoom <= 1) {
      this.cx = this.width / 2;
      this.cy = this.height / 2;
    }
    this.cx = Math.min(this.width, Math.max(0, this.cx));
    this.cy = Math.min(this.height, Math.max(0, this.cy));
  }

  /** Zoom by ``factor`` keeping the image point under (px, py) of ``view`` in place. */
  zoomAt(view, px, py, factor) {
    const g = this.geometry(view);
    const fitted = g.scale / this.zoom;
    const ix = (px - g.tx) / g.scale;
    const iy = (py - g.ty) / g.scale;
    this.zoom = Math.min(MAX_ZOOM, Math.max(1, this.zoom * factor));
    const scale = fitted * this.zoom;
    this.cx = ix - (px - g.vw / 2) / scale;
    this.cy = iy - (py - g.vh / 2) / scale;
    this.clamp();
    this.render();
  }

  zoomBy(factor) {
    const view = this.views().find((v) => v.offsetParent);
    if (!view) return;
    this.zoomAt(view, view.clientWidth / 2, view.clientHeight / 2, factor);
  }

  attach(view) {
    view.addEventListener(
      "wheel",
      (ev) => {
        const rect = view.getBoundingClientRect();
        const lines = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? rect.height : 1;
        const factor = Math.exp(-ev.deltaY * lines * WHEEL_SPEED);
        if (factor <= 1 && this.zoom <= 1) return; // fitted already: the page scrolls on
        ev.preventDefault();
        this.zoomAt(view, ev.clientX - rect.left, ev.clientY - rect.top, factor);
      },
      { passive: false }
    );
    view.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      view.setPointerCapture(ev.pointerId);
      this.drag = { view, id: ev.pointerId, x: ev.clientX, y: ev.clientY };
      view.classList.add("dragging");
    });
    view.addEventListener("pointermove", (ev) => {
      const d = this.drag;
      if (!d || d.id !== ev.pointerId) return;
      const { scale } = this.geometry(view);
      this.cx -= (ev.clientX - d.x) / scale;
      this.cy -= (ev.clientY - d.y) / scale;
      d.x = ev.clientX;
      d.y = ev.clientY;
      this.clamp();
      this.schedule();
    });
    const end = (ev) => {
      if (this.drag && this.drag.id === ev.pointerId) this.drag = null;
      view.classList.remove("dragging");
    };
    view.addEventListener("pointerup", end);
    view.addEventListener("pointercancel", end);
    view.addEventListener("dblclick", () => this.fit());
  }

  // -- side by side or swipe ----------------------------------------------------------
  layout(which) {
    const swipe = which === "swipe";
    this.el.side.hidden = swipe;
    this.el.swipe.hidden = !swipe;
    this.el.layoutSide.setAttribute("aria-pressed", String(!swipe));
    this.el.layoutSwipe.setAttribute("aria-pressed", String(swipe));
    this.el.views.dataset.layout = which;
    this.render();
  }

  applySwipe() {
    const p = Number(this.el.swipePosition.value);
    this.el.swipeTop.style.clipPath = `inset(0 0 0 ${p}%)`;
    this.el.swipeHandle.style.left = p + "%";
  }

  attachHandle() {
    const handle = this.el.swipeHandle;
    let id = null;
    handle.addEventListener("pointerdown", (ev) => {
      ev.stopPropagation(); // the divider moves; the views do not pan
      ev.preventDefault();
      id = ev.pointerId;
      handle.setPointerCapture(id);
    });
    handle.addEventListener("pointermove", (ev) => {
      if (ev.pointerId !== id) return;
      const rect = handle.parentElement.getBoundingClientRect();
      const p = Math.round((100 * (ev.clientX - rect.left)) / rect.width);
      this.el.swipePosition.value = String(Math.min(100, Math.max(0, p)));
      this.applySwipe();
    });
    const end = () => (id = null);
    handle.addEventListener("pointerup", end);
    handle.addEventListener("pointercancel", end);
  }

  key(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest("input, select, textarea")) return;
    if (ev.key === "+" || ev.key === "=") this.zoomBy(2);
    else if (ev.key === "-") this.zoomBy(0.5);
    else if (ev.key === "0") this.fit();
  }
}
