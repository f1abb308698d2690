// The redaction gate's host (lib/gate.js) as a module of its own, for a page that imports it
// by itself; the send page bundles the same code.
export { GateError, gateUrls, openGate } from "./lib/gate.js";
