// The redaction gate in the page (the host side of gate.worker.js).
//
//   const gate = openGate(urls, {limits});          // urls: from the page shell (gateUrls())
//   const result = await gate.inspectPdf(bytes, {profile});
//   // -> {findings: [{page, rule, snippet, action}], sanitized: Uint8Array, pages, actions, ...}
//   const answer = await gate.clear(result, {allow: ["phone"], reason: "..."});
//   // -> {ok: true, override: {rules, reason} | null, warnings} | {ok: false, error, message}
//   const form = await gate.handoffTemplate(null);   // the built-in template (or a clinic's JSON text)
//   // -> {ok: true, template: {id, version, title, fields: [{name, label, kind, required, max_chars}]},
//   //     client_fields, max_client_chars, max_items} | {ok: false, message}
//   const drawn = await gate.renderHandoff(fieldsJson, {template});
//   // -> {ok: true, pdf: Uint8Array} | {ok: false, message, field}: `carebridge handoff render`'s
//
// The Worker runs the project's own Python gate (Pyodide), so the findings and the
// sanitized bytes are those of `carebridge inspect`. It gets the CLI's limits: the
// heap is capped in the Worker; here it is terminated when it runs over the time limit
// (or breaks any limit), and the next inspection starts a fresh one. A file the gate
// cannot check rejects with a GateError whose message is the CLI's one line.

// First use loads Pyodide (about 12 MB, cached for good by its hashed folder) and starts Python.
const LOAD_TIMEOUT_MS = 120_000;

export class GateError extends Error {
  /** code: "limit" (a limit was reached), "unreadable", "unsupported" (the file), or "gate" (ours) */
  constructor(code, message) {
    super(message);
    this.name = "GateError";
    this.code = code;
  }
}

const CODES = { LimitExceeded: "limit", UnreadablePdf: "unreadable", UnsupportedType: "unsupported" };

/** The gate's file URLs and their SRI, from the page shell's <meta name="carebridge-gate"> (JSON). */
export function gateUrls(doc = document) {
  const meta = doc.querySelector('meta[name="carebridge-gate"]');
  if (!meta) throw new GateError("gate", "this gateway does not serve the redaction gate for the page");
  return JSON.parse(meta.content);
}

export function openGate(urls, { limits = {} } = {}) {
  let worker = null, ready = null, nextId = 1;

  function stop() {
    if (worker) worker.terminate();
    worker = null;
    ready = null;
  }

  function start() {
    worker = new Worker(urls.worker, { type: "module", name: "carebridge-gate" });
    const w = worker;
    ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => { stop(); reject(new GateError("gate", "the redaction gate took too long to load")); },
        LOAD_TIMEOUT_MS);
      w.onmessage = ({ data }) => {
        clearTimeout(timer);
        if (data.type === "ready") resolve(data);
        else { stop(); reject(new GateError("gate", "the redaction gate could not be loaded in this page")); }
      };
      w.onerror = (event) => {
        event.preventDefault?.();
        clearTimeout(timer);
        stop();
        reject(new GateError("gate", "the redaction gate could not be loaded in this page"));
      };
    });
    worker.postMessage({ type: "load", urls, limits });
    return ready;
  }

  /** Load the gate now (it loads on first use otherwise); resolves to {limits, loadMs}. */
  function load() {
    return ready || start();
  }

  async function inspectPdf(bytes, { profile = null } = {}) {
    const info = await load();
    if (bytes.length > info.limits.max_input_bytes) throw new GateError("limit", info.messages.size);
    const w = worker, id = nextId++;
    return new Promise((resolve, reject) => {
      const fail = (error) => { clearTimeout(timer); stop(); reject(error); };
      // The time limit covers the parse, as the CLI's does its child's; a Worker busy in
      // Python cannot be interrupted any other way.
      const timer = setTimeout(() => fail(new GateError("limit", info.messages.timeout)),
        info.limits.timeout_seconds * 1000);
      w.onerror = (event) => { event.preventDefault?.(); fail(new GateError("gate", "the redaction gate stopped")); };
      w.onmessage = ({ data }) => {
        if (data.id !== id) return;
        if (data.type === "failed") {
          fail(data.message === "memory limit" ? new GateError("limit", info.messages.memory)
            : new GateError("gate", data.message));
          return;
        }
        clearTimeout(timer);
        const report = JSON.parse(data.report);
        if (!report.ok) {
          // After a limit the interpreter may hold the wreckage of the attempt: start clean next time.
          if (report.error === "LimitExceeded") stop();
          reject(new GateError(CODES[report.error] || "gate", report.message));
          return;
        }
        resolve({ ...report, sanitized: data.sanitized });
      };
      const copy = bytes.slice(); // the caller keeps its bytes; the copy is moved, not cloned
      w.postMessage({ type: "inspect", id, bytes: copy, profile }, [copy.buffer]);
    });
  }

  /** The CLI's gate() on an inspectPdf result: may it be sent with these overrides? */
  async function clear(result, { allow = [], reason = null, profile = null } = {}) {
    await load();
    const { sanitized, ...report } = result;
    const w = worker, id = nextId++;
    return new Promise((resolve, reject) => {
      w.onerror = (event) => { event.preventDefault?.(); stop(); reject(new GateError("gate", "the redaction gate stopped")); };
      w.onmessage = ({ data }) => {
        if (data.id !== id) return;
        if (data.type === "cleared") resolve(JSON.parse(data.answer));
        else { stop(); reject(new GateError("gate", "the redaction gate stopped")); }
      };
      w.postMessage({ type: "clear", id, report: JSON.stringify(report), allow, reason, profile });
    });
  }

  /** One question to the Worker about the handoff, answered by a message of *type*, in *ms* at most. */
  async function askHandoff(message, type, ms) {
    await load();
    const w = worker, id = nextId++;
    return new Promise((resolve, reject) => {
      const fail = (error) => { clearTimeout(timer); stop(); reject(error); };
      const timer = setTimeout(() => fail(new GateError("limit", "the handoff took too long to draw")), ms);
      w.onerror = (event) => { event.preventDefault?.(); fail(new GateError("gate", "the handoff renderer stopped")); };
      w.onmessage = ({ data }) => {
        if (data.id !== id) return;
        if (data.type !== type) {
          fail(new GateError(data.message === "memory limit" ? "limit" : "gate", data.message === "memory limit"
            ? "the handoff needs more memory than the page allows" : "the handoff renderer could not run"));
          return;
        }
        clearTimeout(timer);
        resolve(data);
      };
      w.postMessage({ ...message, id });
    });
  }

  /** The template the handoff form is built from: the built-in one (null) or a clinic's own (JSON text). */
  async function handoffTemplate(template) {
    const data = await askHandoff({ type: "template", template }, "template", LOAD_TIMEOUT_MS);
    return JSON.parse(data.answer);
  }

  /** The handoff's PDF, drawn from a fields file (JSON text) by the CLI's renderer; the first draw loads it. */
  async function renderHandoff(fields, { template = null } = {}) {
    const info = await load();
    const data = await askHandoff({ type: "render", fields, template }, "rendered",
      LOAD_TIMEOUT_MS + info.limits.timeout_seconds * 1000);
    const answer = JSON.parse(data.answer);
    return answer.ok ? { ok: true, pdf: data.pdf } : answer;
  }

  return { load, inspectPdf, clear, handoffTemplate, renderHandoff, close: stop };
}
