// noisead viewer: talking to the local server (the page's token goes with every request).
"use strict";

// This server's secret: it is in the page the server rendered, which no other origin can
// read, and goes back in a header with every upload and every read of a batch.
export const token = document.querySelector('meta[name="noisead-token"]').content;

export class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter; // seconds, for 503 (the server's queue is full)
  }
}

async function answer(response) {
  const data = await response.json().catch(() => null);
  if (!response.ok || !data || data.error) {
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiError(
      response.status,
      (data && data.error) || `The server answered ${response.status}.`,
      Number.isFinite(retry) && retry > 0 ? retry : null
    );
  }
  return data;
}

/** GET a JSON answer of the server; throws ApiError with the server's message. */
export async function getJSON(url) {
  const response = await fetch(url, {
    headers: { "X-Noisead-Token": token },
    credentials: "same-origin",
  });
  return answer(response);
}

/** Upload one photo for analysis; resolves to the result, throws ApiError. */
export async function analyse(file, mode, parts = "default") {
  const form = new FormData();
  form.append("image", file);
  form.append("mode", mode);
  form.append("parts", parts);
  const response = await fetch("/api/analyze", {
    method: "POST",
    body: form,
    headers: { "X-Noisead-Token": token },
    credentials: "same-origin",
  });
  return answer(response);
}

export function formatBytes(n) {
  if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(1) + " MB";
  if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
  return n + " bytes";
}

/** "Flagged" from "flagged": the shared decision's words, capitalised, nothing else. */
export function capitalised(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "";
}

/** A new element: ``element("span", {className: "x", textContent: "y"})``. */
export function element(tag, properties) {
  return Object.assign(document.createElement(tag), properties || {});
}

/** A list item's badge for a decision (the class names are the decision's words). */
export function decisionClass(decision) {
  return "decision-" + String(decision || "none").replace(/ /g, "-");
}
