// From pen strokes to the model's input: an 8x8 image with values 0..16, like load_digits.
//
// load_digits was made from 32x32 bitmaps of scanned digits, normalised in size, by counting
// the ink in each 4x4 block. We do the same from the strokes themselves (not the screen's
// pixels), so the result does not depend on how large or where the digit was drawn: the strokes
// are scaled so the digit fills the height (or the width, when it is wider than tall), centred,
// drawn again with a pen one block wide (the stroke width of the scanned digits), and the ink
// in each block is averaged.

export const GRID = 8;
/** Pen width relative to the digit's size: one block of the 8x8 grid. */
export const PEN = 1 / GRID;
const RENDER = 64; // pixels per side of the drawing the blocks are averaged from
const BLOCK = RENDER / GRID;

function makeCanvas(size) {
  if (typeof OffscreenCanvas !== 'undefined') return new OffscreenCanvas(size, size);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  return canvas;
}

const scratch = makeCanvas(RENDER);
const ctx = scratch.getContext('2d', { willReadFrequently: true });

/**
 * @param {Array<Array<{x: number, y: number}>>} strokes points in any unit (CSS pixels)
 * @returns {Float32Array | null} 64 values 0..16, row by row; null when nothing is drawn
 */
export function strokesToPixels(strokes) {
  const points = strokes.flat();
  if (points.length === 0) return null;
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const { x, y } of points) {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x);
    minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const pen = PEN * RENDER;
  const extent = Math.max(maxX - minX, maxY - minY);
  const scale = extent > 1e-6 ? (RENDER - pen) / extent : 0;
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  const map = ({ x, y }) => [(x - cx) * scale + RENDER / 2, (y - cy) * scale + RENDER / 2];

  ctx.clearRect(0, 0, RENDER, RENDER);
  ctx.fillStyle = ctx.strokeStyle = '#000';
  ctx.lineWidth = pen;
  ctx.lineCap = ctx.lineJoin = 'round';
  for (const stroke of strokes) {
    if (stroke.length === 0) continue;
    const [x0, y0] = map(stroke[0]);
    // A dot where the stroke starts: a click, or a stroke that did not move, is ink too.
    ctx.beginPath();
    ctx.arc(x0, y0, pen / 2, 0, 2 * Math.PI);
    ctx.fill();
    if (stroke.length === 1) continue;
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    for (let i = 1; i < stroke.length; i++) ctx.lineTo(...map(stroke[i]));
    ctx.stroke();
  }

  const alpha = ctx.getImageData(0, 0, RENDER, RENDER).data;
  const pixels = new Float32Array(GRID * GRID);
  for (let y = 0; y < RENDER; y++) {
    const row = Math.floor(y / BLOCK) * GRID;
    for (let x = 0; x < RENDER; x++) {
      pixels[row + Math.floor(x / BLOCK)] += alpha[(y * RENDER + x) * 4 + 3];
    }
  }
  const toSixteen = 16 / (255 * BLOCK * BLOCK);
  for (let i = 0; i < pixels.length; i++) pixels[i] *= toSixteen;
  return pixels;
}

/** load_digits sample 918, a held-out '3': the benchmark's input when nothing is drawn. */
export const SAMPLE_DIGIT = Float32Array.from([
  0, 0, 9, 16, 10, 1, 0, 0,
  0, 0, 8, 3, 16, 4, 0, 0,
  0, 0, 0, 5, 14, 2, 0, 0,
  0, 0, 2, 16, 15, 7, 0, 0,
  0, 0, 0, 0, 3, 15, 2, 0,
  0, 4, 6, 0, 0, 13, 7, 0,
  0, 6, 13, 1, 5, 16, 3, 0,
  0, 0, 10, 16, 15, 5, 0, 0,
]);
