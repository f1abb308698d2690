// Building the page with DOM calls only (never innerHTML): every text that
// came from a file or the server is set as text, never parsed as markup.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Replace the app's content, move focus to its heading (screen readers announce it). */
export function show(root, heading, ...children) {
  const h = el("h1", { text: heading, tabindex: "-1" });
  root.replaceChildren(h, ...children.filter((c) => c !== null && c !== undefined));
  root.dataset.state = heading;
  h.focus();
}

export function field(id, label, input) {
  input.id = id;
  return el("p", { class: "field" }, el("label", { for: id, text: label }), input);
}

export function alertBox(text) {
  return el("p", { role: "alert", class: "error", text });
}

export function sizeText(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let n = bytes, u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

/** Hand *bytes* to the browser as a download named *name*; the object URL is revoked at once after. */
export function save(bytes, name, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type: type || "application/octet-stream" }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/** A reason as a sentence for people: a capital first, a full stop last (unless it ends with one already). */
export function sentence(text) {
  const words = String(text).trim();
  return words ? `${words[0].toUpperCase()}${words.slice(1)}${/[.!?]$/.test(words) ? "" : "."}` : words;
}
