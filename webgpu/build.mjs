// Copies the ONNX Runtime Web files the page loads from node_modules into ./ort/ (no CDN).
// Run `npm ci && npm run build` in this folder. Writes ort/manifest.json, which the app's
// server reads to tell whether this step was run.
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, 'node_modules', 'onnxruntime-web');
const outDir = join(here, 'ort');

// WASM only (used when no real WebGPU adapter exists): the small build.
// WebGPU with the WASM backend in the same binary: ort.webgpu.min.mjs loads the *asyncify* build.
const FILES = [
  'ort.wasm.min.mjs',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.wasm',
  'ort.webgpu.min.mjs',
  'ort-wasm-simd-threaded.asyncify.mjs',
  'ort-wasm-simd-threaded.asyncify.wasm',
];

const { version, license } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
const pinned = JSON.parse(await readFile(join(here, 'package.json'), 'utf8')).dependencies['onnxruntime-web'];
if (version !== pinned) {
  throw new Error(`node_modules has onnxruntime-web ${version}, package.json pins ${pinned}: run \`npm ci\``);
}

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
let bytes = 0;
for (const name of FILES) {
  await copyFile(join(pkgDir, 'dist', name), join(outDir, name));
  bytes += (await stat(join(outDir, name))).size;
}
await writeFile(
  join(outDir, 'manifest.json'),
  JSON.stringify({ package: 'onnxruntime-web', version, license, files: FILES }, null, 2) + '\n',
);
console.log(`onnxruntime-web ${version}: ${FILES.length} files, ${(bytes / 1e6).toFixed(1)} MB -> ${outDir}`);
