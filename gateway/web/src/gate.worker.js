// The gate Worker: the project's own redaction gate (Python, gateway/client/redaction)
// run by Pyodide, all from this origin. The page (lib/gate.js) is its host and
// enforces the limits the CLI enforces with rlimits: it terminates this Worker at
// the time limit, and here the WebAssembly heap may not grow past the memory limit
// (Python meets a MemoryError, which the gate reports as the memory limit).
//
// It also draws the handoff form's PDF with the CLI's own renderer (gateway/client/handoff.py,
// fpdf2 and the CLI's fonts), loaded from this origin on the form's first use.
//
// Messages in:  {type: "load", urls, limits} then {type: "inspect", id, bytes, profile}
//               | {type: "clear", id, report, allow, reason, profile} (the CLI's gate() on a report)
//               | {type: "template", id, template} | {type: "render", id, fields, template} (the handoff)
// Messages out: {type: "ready", limits, messages, loadMs} | {type: "result", id, report, sanitized}
//               | {type: "cleared", id, answer} | {type: "template", id, answer}
//               | {type: "rendered", id, answer, pdf}
//               | {type: "failed", id, message} (a fault of the page's gate itself, not of the file)

const GATE_DIR = "/lib/carebridge-gate"; // the gate's sources and pypdf, on Pyodide's own file system

let py = null; // the Pyodide interpreter
let handoffArchives = []; // the handoff renderer's files (fpdf2, defusedxml, sources and fonts) and their SRI
let handoff = null; // the Python module carebridge.gateway.client.handoff_inpage, once loaded
let gate = null; // the Python module carebridge.gateway.client.redaction.inpage, once loaded
let toBytes = null; // Uint8Array -> a Python bytes object (one copy into the Python heap)
let limitsJson = null; // the limits in force, as the gate's Python reads them
let heapCeiling = Infinity;
let refused = false; // whether a growth past the ceiling was refused during this inspection

// Every growth of a WebAssembly heap in this Worker goes through Memory.prototype.grow
// (Emscripten's resize calls it): refuse growth past the ceiling, and malloc fails cleanly.
const grow = WebAssembly.Memory.prototype.grow;
WebAssembly.Memory.prototype.grow = function (pages) {
  if (this.buffer.byteLength + pages * 65536 > heapCeiling) {
    refused = true;
    throw new RangeError("memory limit");
  }
  return grow.call(this, pages);
};

async function fetchChecked(url, integrity) {
  const response = await fetch(url, { integrity, credentials: "omit" });
  if (!response.ok) throw new Error(`could not load the gate (${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

async function load({ urls, limits }) {
  const started = performance.now();
  const { loadPyodide } = await import(urls.pyodide);
  const indexURL = new URL(".", new URL(urls.pyodide, self.location.href)).href;
  let archives;
  [py, ...archives] = await Promise.all([
    // No package is ever fetched: packageBaseUrl points at our own folder, and the CSP allows only 'self'.
    loadPyodide({ indexURL, packageBaseUrl: indexURL, packages: [], fullStdLib: false,
                  stdout: () => {}, stderr: () => {} }),
    // The wheels (pypdf, fontTools) and the gate's sources, each checked against its released SRI.
    ...urls.archives.map((a) => fetchChecked(a.url, a.integrity)),
  ]);
  for (const archive of archives) py.unpackArchive(archive, "zip", { extractDir: GATE_DIR });
  handoffArchives = urls.handoff;
  py.runPython(`import sys\nsys.path.insert(0, ${JSON.stringify(GATE_DIR)})`);
  gate = py.pyimport("carebridge.gateway.client.redaction.inpage");
  gate.install();
  toBytes = py.runPython("lambda view: view.to_bytes()");
  limitsJson = gate.limits_json(JSON.stringify(limits || {}));
  const effective = JSON.parse(limitsJson);
  heapCeiling = effective.max_memory_bytes;
  return { limits: effective, messages: JSON.parse(gate.messages(limitsJson)),
           loadMs: Math.round(performance.now() - started) };
}

function inspect({ bytes, profile }) {
  const data = toBytes(bytes);
  const result = gate.inspect(data, limitsJson, profile ? JSON.stringify(profile) : null);
  data.destroy();
  try {
    const report = result.get(0);
    const sanitizedProxy = result.get(1);
    const sanitized = sanitizedProxy.toJs();
    sanitizedProxy.destroy?.();
    return { report, sanitized };
  } finally {
    result.destroy();
  }
}

/** The handoff renderer, unpacked beside the gate on first use (the gate's load comes first). */
async function loadHandoff() {
  if (!handoff) {
    const archives = await Promise.all(handoffArchives.map((a) => fetchChecked(a.url, a.integrity)));
    for (const archive of archives) py.unpackArchive(archive, "zip", { extractDir: GATE_DIR });
    handoff = py.pyimport("carebridge.gateway.client.handoff_inpage");
    handoff.install(`${GATE_DIR}/fonts`);
  }
  return handoff;
}

async function render({ fields, template }) {
  const result = (await loadHandoff()).render_json(fields, template ?? undefined);
  try {
    const pdfProxy = result.get(1);
    const pdf = pdfProxy.toJs();
    pdfProxy.destroy?.();
    return { answer: result.get(0), pdf };
  } finally {
    result.destroy();
  }
}

self.onmessage = async ({ data }) => {
  try {
    if (data.type === "load") {
      self.postMessage({ type: "ready", ...(await load(data)) });
    } else if (data.type === "clear") {
      const answer = gate.clear(data.report, JSON.stringify(data.allow), data.reason,
        data.profile ? JSON.stringify(data.profile) : null);
      self.postMessage({ type: "cleared", id: data.id, answer });
    } else if (data.type === "inspect") {
      refused = false;
      const { report, sanitized } = inspect(data);
      self.postMessage({ type: "result", id: data.id, report, sanitized }, [sanitized.buffer]);
    } else if (data.type === "template") {
      const answer = (await loadHandoff()).template_json(data.template ?? undefined);
      self.postMessage({ type: "template", id: data.id, answer });
    } else if (data.type === "render") {
      refused = false;
      const { answer, pdf } = await render(data);
      self.postMessage({ type: "rendered", id: data.id, answer, pdf }, [pdf.buffer]);
    }
  } catch (error) {
    // Never the file's content: Python's errors about the file come back in the report instead.
    // Python may meet the refused growth outside the parse (where the gate would name the limit).
    self.postMessage({ type: "failed", id: data.id, message: refused || error instanceof RangeError
      ? "memory limit" : "the page's redaction gate failed to run" });
  }
};
