// Copies the three libraries the chat page loads from node_modules into ./assets/vendor/ (no
// CDN, no bundler: each is a single ES module). Run `npm ci && npm run build` in this folder.
// Writes assets/vendor/manifest.json, which the chat server reads to tell whether this step ran.
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, 'assets', 'vendor');

// package -> [file in the package, name in assets/vendor]
const FILES = {
  'socket.io-client': ['dist/socket.io.esm.min.js', 'socket.io.mjs'],
  marked: ['lib/marked.esm.js', 'marked.mjs'],
  dompurify: ['dist/purify.es.mjs', 'purify.mjs'],
};

const pinned = JSON.parse(await readFile(join(here, 'package.json'), 'utf8')).dependencies;
await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
const packages = [];
let bytes = 0;
for (const [name, [source, target]] of Object.entries(FILES)) {
  const pkgDir = join(here, 'node_modules', name);
  const { version, license } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
  if (version !== pinned[name]) {
    throw new Error(`node_modules has ${name} ${version}, package.json pins ${pinned[name]}: run \`npm ci\``);
  }
  await copyFile(join(pkgDir, source), join(outDir, target));
  bytes += (await stat(join(outDir, target))).size;
  packages.push({ package: name, version, license, file: target });
}
await writeFile(join(outDir, 'manifest.json'), JSON.stringify({ packages }, null, 2) + '\n');
console.log(`chat page libraries: ${packages.length} files, ${(bytes / 1e3).toFixed(0)} kB -> ${outDir}`);
