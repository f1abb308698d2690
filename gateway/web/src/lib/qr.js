// A QR code as an SVG drawn with DOM calls (no markup parsed, no image
// fetched): the modules come from uqr, a small dependency-free encoder.
import { encode } from "uqr";

const SVG = "http://www.w3.org/2000/svg";
const QUIET_ZONE = 4; // modules of white border, as ISO/IEC 18004 asks for scanners

/** An <svg role=img> showing *text* as a QR code, labelled *label* for screen readers. */
export function qrCode(text, label) {
  const { size, data } = encode(text, { ecc: "M", border: QUIET_ZONE });
  let path = "";
  data.forEach((row, y) => row.forEach((dark, x) => { if (dark) path += `M${x} ${y}h1v1h-1z`; }));
  const svg = document.createElementNS(SVG, "svg");
  for (const [name, value] of Object.entries({ viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": label,
    class: "qr", "shape-rendering": "crispEdges" })) svg.setAttribute(name, value);
  const background = document.createElementNS(SVG, "rect");
  for (const [name, value] of Object.entries({ width: size, height: size, fill: "#fff" })) {
    background.setAttribute(name, String(value));
  }
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", path);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  return svg;
}
