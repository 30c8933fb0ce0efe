// Which backend runs the model, and running it: WebGPU when a real adapter exists, else WASM.
//
// ONNX Runtime Web is loaded from ./ort/ (copied from the npm package by `npm run build`; no CDN).
// With no usable GPU only the smaller WASM build is loaded. One session per backend, so the
// backend in use and any failure are visible (a combined ['webgpu', 'wasm'] session would fall
// back silently).

const ORT_DIR = new URL('./ort/', import.meta.url).href; // absolute: ORT resolves it against itself
const MODEL_URL = new URL('./model/digits.onnx', import.meta.url).href;
const INPUT = 'pixels';
const OUTPUT = 'probabilities';

export class SetupError extends Error {}

function describeAdapter(info) {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter(Boolean);
  return [...new Set(parts)].join(' · ') || 'unnamed adapter';
}

/**
 * Is there a WebGPU adapter worth using? A software fallback adapter (SwiftShader) works but is
 * far slower than WASM for a model this small, so it counts as "no WebGPU" unless forced.
 * @returns {Promise<{usable: boolean, reason: string | null, adapter: string | null,
 *                    info: object | null, gpuAdapter: GPUAdapter | null}>}
 */
export async function detectWebGpu({ force = false } = {}) {
  const none = (reason, extra = {}) =>
    ({ usable: false, reason, adapter: null, info: null, gpuAdapter: null, ...extra });
  if (!globalThis.isSecureContext) return none('the page is not a secure context (serve it from 127.0.0.1 or https)');
  if (!navigator.gpu) return none('this browser does not support WebGPU (navigator.gpu is missing)');
  let gpuAdapter;
  try {
    gpuAdapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (error) {
    return none(`requesting a GPU adapter failed: ${error.message}`);
  }
  if (!gpuAdapter) {
    return none('the browser offers no GPU adapter (no GPU, GPU disabled or blocklisted, or WebGPU turned off)');
  }
  const info = gpuAdapter.info ?? (await gpuAdapter.requestAdapterInfo?.()) ?? null;
  const plain = info && {
    vendor: info.vendor, architecture: info.architecture, device: info.device,
    description: info.description,
  };
  const adapter = describeAdapter(info);
  const fallback = Boolean(gpuAdapter.isFallbackAdapter || info?.isFallbackAdapter);
  if (fallback && !force) {
    return none(
      `only a software fallback adapter (${adapter}), slower than WASM here; add ?webgpu=force to the address to use it anyway`,
      { adapter, info: { ...plain, isFallbackAdapter: true } },
    );
  }
  return { usable: true, reason: null, adapter, info: { ...plain, isFallbackAdapter: fallback }, gpuAdapter };
}

async function importOrt(withWebGpu) {
  const file = withWebGpu ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs';
  try {
    return await import(`${ORT_DIR}${file}`);
  } catch (error) {
    throw new SetupError(
      `ONNX Runtime Web is missing (${file}: ${error.message}). Run \`npm ci && npm run build\` in the webgpu folder.`,
    );
  }
}

async function fetchModel() {
  const response = await fetch(MODEL_URL);
  if (!response.ok) throw new SetupError(`the model did not load: ${MODEL_URL} answered ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** One inference session on one backend. */
export class Backend {
  constructor(ort, name, session) {
    this.ort = ort;
    this.name = name; // 'webgpu' | 'wasm'
    this.session = session;
  }

  /** @param {Float32Array} pixels 64 values 0..16 @returns {Promise<Float32Array>} 10 probabilities */
  async predict(pixels) {
    const input = new this.ort.Tensor('float32', pixels, [1, 1, 8, 8]);
    const outputs = await this.session.run({ [INPUT]: input });
    const data = Float32Array.from(outputs[OUTPUT].data);
    input.dispose?.();
    outputs[OUTPUT].dispose?.();
    return data;
  }

  /** Median (and more) of `runs` timed inferences, after a few untimed ones. */
  async benchmark(pixels, runs) {
    const first = performance.now();
    await this.predict(pixels);
    const firstMs = performance.now() - first;
    for (let i = 0; i < 5; i++) await this.predict(pixels);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      await this.predict(pixels);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
    const median = times.length % 2 ? times[(times.length - 1) / 2]
      : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
    return {
      available: true, medianMs: median, p90Ms: at(0.9), minMs: times[0],
      meanMs: times.reduce((a, b) => a + b, 0) / times.length, runs, firstMs,
    };
  }
}

async function createBackend(ort, name, model) {
  const session = await ort.InferenceSession.create(model, {
    executionProviders: [name],
    graphOptimizationLevel: 'all',
  });
  return new Backend(ort, name, session);
}

/**
 * Load ONNX Runtime Web and the model on the best backend.
 * @returns {Promise<{ort, primary: Backend, backends: {webgpu?: Backend, wasm?: Backend},
 *   gpu: object, reason: string | null, timings: object}>}
 */
export async function loadEngine({ forceWebGpu = false } = {}) {
  const t0 = performance.now();
  const modelPromise = fetchModel();
  const gpu = await detectWebGpu({ force: forceWebGpu });
  const t1 = performance.now();
  const ort = await importOrt(gpu.usable);
  ort.env.wasm.wasmPaths = ORT_DIR;
  ort.env.wasm.numThreads = 1; // a model this small is fastest on one thread
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  if (gpu.usable) ort.env.webgpu.adapter = gpu.gpuAdapter; // the adapter detected above, fallback or not
  const t2 = performance.now();
  const model = await modelPromise;

  const backends = {};
  let reason = gpu.reason;
  if (gpu.usable) {
    try {
      backends.webgpu = await createBackend(ort, 'webgpu', model);
    } catch (error) {
      reason = `WebGPU failed to start the model: ${error.message}`;
    }
  }
  backends.wasm = await createBackend(ort, 'wasm', model);
  const primary = backends.webgpu ?? backends.wasm;
  const t3 = performance.now();
  // The first run of a session pays for kernel set-up; pay it now, not on the first stroke.
  await primary.predict(new Float32Array(64));
  const t4 = performance.now();
  return {
    ort, primary, backends, gpu, reason,
    timings: { detectMs: t1 - t0, ortImportMs: t2 - t1, sessionMs: t3 - t2, warmupMs: t4 - t3 },
  };
}
