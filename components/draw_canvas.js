// The Draw page's canvas (ui.draw_canvas mounts it): white ink on black, with the mouse, a finger or
// a pen. At the end of each stroke it sends the canvas's ink as side×side bytes (base64) at once, no
// image file and no wait: the server checks the length and reads the bytes, nothing to decode.
// Undo and Clear are here too: they need no round trip to redraw the canvas.

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function build(root, data, setStateValue) {
  const box = element("div", "draw", root);
  const canvas = element("canvas", "ink", box);
  canvas.width = canvas.height = data.side;
  canvas.style.width = canvas.style.height = `${data.side}px`;
  canvas.setAttribute("aria-label", "Drawing canvas: draw with the mouse, a finger or a pen");
  const tools = element("div", "tools", box);
  const undo = element("button", null, tools);
  undo.textContent = "↶ Undo";
  const clear = element("button", null, tools);
  clear.textContent = "🧹 Clear";
  const view = { canvas, g: canvas.getContext("2d", { willReadFrequently: true }), strokes: [], stroke: null,
                 brush: data.brush, side: data.side };

  const paint = (stroke) => {
    const g = view.g;
    g.strokeStyle = g.fillStyle = "#fff";
    g.lineWidth = stroke.width;
    g.lineCap = g.lineJoin = "round";
    g.beginPath();
    g.moveTo(stroke.points[0][0], stroke.points[0][1]);
    if (stroke.points.length === 1) {  // a dot
      g.arc(stroke.points[0][0], stroke.points[0][1], stroke.width / 2, 0, 2 * Math.PI);
      g.fill();
      return;
    }
    stroke.points.slice(1).forEach(([x, y]) => g.lineTo(x, y));
    g.stroke();
  };
  const repaint = () => {
    view.g.fillStyle = "#000";
    view.g.fillRect(0, 0, view.side, view.side);
    view.strokes.forEach(paint);
  };
  const send = () => {
    if (!view.strokes.length) { setStateValue("drawing", null); return; }
    const rgba = view.g.getImageData(0, 0, view.side, view.side).data;
    const ink = new Uint8Array(view.side * view.side);
    for (let i = 0; i < ink.length; i += 1) ink[i] = rgba[4 * i];  // white ink: the red channel is all of it
    setStateValue("drawing", { side: view.side, pixels: base64(ink), strokes: view.strokes.length });
  };
  const at = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * (view.side / rect.width), (event.clientY - rect.top) * (view.side / rect.height)];
  };

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    view.stroke = { width: view.brush, points: [at(event)] };
    paint(view.stroke);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!view.stroke) return;
    const last = view.stroke.points[view.stroke.points.length - 1];
    const point = at(event);
    view.stroke.points.push(point);
    paint({ width: view.stroke.width, points: [last, point] });
  });
  const end = () => {
    if (!view.stroke) return;
    view.strokes.push(view.stroke);
    view.stroke = null;
    repaint();  // each stroke as one path, as Undo repaints them: what is sent is what Undo comes back to
    send();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  undo.addEventListener("click", () => { if (view.strokes.length) { view.strokes.pop(); repaint(); send(); } });
  clear.addEventListener("click", () => { view.strokes = []; repaint(); send(); });  // always: it also clears a refused message
  repaint();
  return view;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return;
  let view = parentElement.__cnnkitDraw;
  if (!view) {
    view = parentElement.__cnnkitDraw = build(parentElement, data, setStateValue);
    // A new canvas is empty: a drawing the server still holds (this canvas was shown before) goes.
    if (data.drawn) setStateValue("drawing", null);
  }
  view.brush = data.brush;  // for the next stroke
}
