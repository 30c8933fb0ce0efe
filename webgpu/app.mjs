// The page: drawing pad, live prediction, backend badge and benchmark.
//
// State for tests and tools is on `window.digitsApp` (see `publish`) and mirrored in data-*
// attributes of <body>; the text on the page is for people.

import { loadEngine, SetupError } from './engine.mjs';
import { SAMPLE_DIGIT, strokesToPixels } from './preprocess.mjs';

const params = new URLSearchParams(location.search);
const FORCE_WEBGPU = params.get('webgpu') === 'force';
const BENCH_RUNS = Math.max(1, Number.parseInt(params.get('runs') ?? '50', 10) || 50);

const $ = (id) => document.getElementById(id);
const pad = $('pad');
const padCtx = pad.getContext('2d');
const seenCtx = $('seen').getContext('2d');

const state = {
  status: 'loading', // loading | ready | error
  error: null,
  backend: null, // 'webgpu' | 'wasm'
  reason: null, // why WebGPU is not used, when it is not
  adapter: null, // description of the WebGPU adapter, when one was found (even if not used)
  adapterInfo: null,
  webgpuForced: FORCE_WEBGPU,
  ortVersion: null,
  timings: {},
  readyMs: null, // from navigation start to the model answering
  drawSeq: 0, // bumped on every change of the drawing
  predictedSeq: 0, // the drawSeq the shown prediction belongs to
  clearedSeq: 0, // the drawSeq of the last Clear: older predictions are stale
  strokes: [],
  input: null, // the 8x8 model input of the shown prediction
  prediction: null,
  probabilities: null,
  inferences: 0,
  benchmark: null, // {webgpu: {...}, wasm: {...}} once run
  benchmarking: false,
};
let engine = null;

// ---- drawing ---------------------------------------------------------------------------------

function resizePad() {
  const scale = window.devicePixelRatio || 1;
  const { width } = pad.getBoundingClientRect();
  pad.width = pad.height = Math.round(width * scale);
  padCtx.setTransform(scale, 0, 0, scale, 0, 0);
  redrawPad();
}

function penWidth() {
  return pad.getBoundingClientRect().width / 14;
}

function redrawPad() {
  const size = pad.getBoundingClientRect().width;
  padCtx.clearRect(0, 0, size, size);
  padCtx.strokeStyle = padCtx.fillStyle = getComputedStyle(pad).color;
  padCtx.lineWidth = penWidth();
  padCtx.lineCap = padCtx.lineJoin = 'round';
  for (const stroke of state.strokes) drawSegment(stroke, 0);
}

function drawSegment(stroke, from) {
  if (from === 0) {
    padCtx.beginPath();
    padCtx.arc(stroke[0].x, stroke[0].y, penWidth() / 2, 0, 2 * Math.PI);
    padCtx.fill();
  }
  if (stroke.length === 1) return;
  padCtx.beginPath();
  const start = stroke[Math.max(0, from - 1)];
  padCtx.moveTo(start.x, start.y);
  for (let i = Math.max(1, from); i < stroke.length; i++) padCtx.lineTo(stroke[i].x, stroke[i].y);
  padCtx.stroke();
}

function pointOf(event) {
  const box = pad.getBoundingClientRect();
  return { x: event.clientX - box.left, y: event.clientY - box.top };
}

let activePointer = null;

pad.addEventListener('pointerdown', (event) => {
  if (activePointer !== null || (event.pointerType === 'mouse' && event.button !== 0)) return;
  event.preventDefault();
  activePointer = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  const stroke = [pointOf(event)];
  state.strokes.push(stroke);
  drawSegment(stroke, 0);
  drawingChanged();
});

pad.addEventListener('pointermove', (event) => {
  if (event.pointerId !== activePointer) return;
  const stroke = state.strokes.at(-1);
  const from = stroke.length;
  const events = event.getCoalescedEvents?.() ?? [];
  for (const each of events.length ? events : [event]) stroke.push(pointOf(each));
  drawSegment(stroke, from);
  drawingChanged();
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activePointer = null;
  drawingChanged();
}
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);

function clearPad() {
  state.strokes = [];
  state.drawSeq += 1;
  state.predictedSeq = state.clearedSeq = state.drawSeq;
  state.input = state.prediction = state.probabilities = null;
  redrawPad();
  showPrediction();
}

// ---- prediction ------------------------------------------------------------------------------

let scheduled = false;
let running = false;

function drawingChanged() {
  state.drawSeq += 1;
  $('pad-hint').hidden = true;
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(predictNow);
  }
}

async function predictNow() {
  scheduled = false;
  if (!engine || running) return; // the running one schedules again when it ends
  running = true;
  try {
    while (state.predictedSeq !== state.drawSeq) {
      const seq = state.drawSeq;
      const pixels = strokesToPixels(state.strokes);
      const probabilities = pixels ? await engine.primary.predict(pixels) : null;
      if (seq < state.clearedSeq) continue; // cleared meanwhile
      state.input = pixels;
      state.probabilities = probabilities;
      state.prediction = probabilities ? argmax(probabilities) : null;
      state.inferences += 1;
      state.predictedSeq = seq;
      showPrediction();
    }
  } catch (error) {
    fail(`inference failed: ${error.message}`);
  } finally {
    running = false;
  }
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function buildBars() {
  const list = $('bars');
  for (let digit = 0; digit < 10; digit++) {
    const item = document.createElement('li');
    item.dataset.digit = String(digit);
    item.innerHTML = `<span class="bar-label">${digit}</span>
      <span class="bar-track"><span class="bar-fill"></span></span>
      <span class="bar-value">–</span>`;
    list.append(item);
  }
}

function showPrediction() {
  const probabilities = state.probabilities;
  $('prediction').textContent = state.prediction ?? '–';
  $('confidence').textContent = probabilities
    ? `${(probabilities[state.prediction] * 100).toFixed(1)} % sure`
    : 'Draw to see a prediction';
  for (const item of $('bars').children) {
    const digit = Number(item.dataset.digit);
    const p = probabilities ? probabilities[digit] : 0;
    item.querySelector('.bar-fill').style.setProperty('--p', String(p));
    item.querySelector('.bar-value').textContent = probabilities ? `${(p * 100).toFixed(1)} %` : '–';
    item.classList.toggle('top', probabilities !== null && digit === state.prediction);
  }
  const image = seenCtx.createImageData(8, 8);
  for (let i = 0; i < 64; i++) {
    const ink = state.input ? Math.round(255 - (state.input[i] / 16) * 255) : 255;
    image.data.set([ink, ink, ink, 255], i * 4);
  }
  seenCtx.putImageData(image, 0, 0);
  publish();
}

// ---- benchmark -------------------------------------------------------------------------------

const fmt = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);

function showBenchmarkRow(name, result) {
  const row = document.querySelector(`#bench-body tr[data-backend="${name}"]`);
  const cells = row.querySelectorAll('td');
  const numbers = result?.available
    ? [fmt(result.medianMs), fmt(result.p90Ms), fmt(result.minMs), String(result.runs)]
    : ['–', '–', '–', '–'];
  numbers.forEach((text, i) => { cells[i].textContent = text; });
  const status = cells[4];
  status.classList.remove('ok', 'off');
  if (!result) {
    status.textContent = state.benchmarking ? 'running…' : 'not run yet';
  } else if (result.available) {
    status.textContent = `done · first run ${fmt(result.firstMs)}${name === state.backend ? ' · in use' : ''}`;
    status.classList.add('ok');
  } else {
    status.textContent = result.reason;
    status.classList.add('off');
  }
}

async function runBenchmark() {
  if (!engine || state.benchmarking) return state.benchmark;
  state.benchmarking = true;
  state.benchmark = null;
  $('benchmark').disabled = true;
  $('benchmark').textContent = 'Benchmarking…';
  showBenchmarkRow('webgpu', null);
  showBenchmarkRow('wasm', null);
  publish();
  const pixels = strokesToPixels(state.strokes) ?? SAMPLE_DIGIT;
  const results = {};
  try {
    for (const name of ['webgpu', 'wasm']) {
      const backend = engine.backends[name];
      results[name] = backend
        ? await backend.benchmark(pixels, BENCH_RUNS)
        : { available: false, reason: state.reason ?? 'not available' };
      showBenchmarkRow(name, results[name]);
    }
    state.benchmark = results;
  } catch (error) {
    fail(`benchmark failed: ${error.message}`);
  } finally {
    state.benchmarking = false;
    $('benchmark').disabled = state.status !== 'ready';
    $('benchmark').textContent = 'Benchmark';
    publish();
  }
  return state.benchmark;
}

// ---- status ----------------------------------------------------------------------------------

function showBackend() {
  const badge = $('backend-badge');
  const detail = $('backend-detail');
  badge.className = 'badge';
  if (state.status === 'error') {
    badge.textContent = 'Not running';
    badge.classList.add('error');
    detail.textContent = state.error;
  } else if (state.backend === 'webgpu') {
    badge.textContent = 'WebGPU';
    badge.classList.add('gpu');
    detail.textContent = `Running on the GPU: ${state.adapter}${state.webgpuForced ? ' (forced with ?webgpu=force)' : ''}`;
  } else if (state.backend === 'wasm') {
    badge.textContent = 'WASM';
    badge.classList.add('cpu');
    detail.textContent = `Running on the CPU (WebAssembly). WebGPU is not used: ${state.reason}.`;
  }
  badge.title = detail.textContent;
}

function fail(message) {
  state.status = 'error';
  state.error = message;
  $('benchmark').disabled = true;
  showBackend();
  publish();
}

function publish() {
  const body = document.body.dataset;
  body.state = state.status;
  body.backend = state.backend ?? '';
  body.prediction = state.prediction ?? '';
  body.benchmark = state.benchmark ? 'done' : state.benchmarking ? 'running' : '';
}

window.digitsApp = {
  /** A plain copy of the state (arrays as arrays), for tests and tools. */
  snapshot() {
    const { strokes, input, probabilities, ...rest } = state;
    return {
      ...rest,
      strokeCount: strokes.length,
      input: input && Array.from(input),
      probabilities: probabilities && Array.from(probabilities),
      idle: activePointer === null && !running && !scheduled && state.predictedSeq === state.drawSeq,
    };
  },
  /** Run the model on 64 pixel values 0..16 with the backend in use; returns 10 probabilities. */
  async predict(pixels) {
    return Array.from(await engine.primary.predict(Float32Array.from(pixels)));
  },
  runBenchmark,
  clear: clearPad,
};

// ---- start -----------------------------------------------------------------------------------

async function start() {
  buildBars();
  resizePad();
  showPrediction();
  new ResizeObserver(resizePad).observe(pad);
  $('clear').addEventListener('click', clearPad);
  $('benchmark').addEventListener('click', runBenchmark);
  $('bench-runs').textContent = String(BENCH_RUNS);
  try {
    engine = await loadEngine({ forceWebGpu: FORCE_WEBGPU });
  } catch (error) {
    const hint = error instanceof SetupError ? '' : ' (see the browser console)';
    console.error(error);
    fail(`${error.message}${hint}`);
    return;
  }
  state.backend = engine.primary.name;
  state.reason = engine.reason;
  state.adapter = engine.gpu.adapter;
  state.adapterInfo = engine.gpu.info;
  state.ortVersion = engine.ort.env.versions?.web ?? null;
  state.timings = engine.timings;
  state.readyMs = performance.now();
  state.status = 'ready';
  $('benchmark').disabled = false;
  $('versions').textContent = `ONNX Runtime Web ${state.ortVersion ?? ''}, served from this computer.`;
  showBackend();
  publish();
  if (state.strokes.length) drawingChanged(); // drawn while loading
}

start();
