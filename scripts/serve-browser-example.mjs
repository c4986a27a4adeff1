#!/usr/bin/env node
// Builds and serves the browser example (`npm run example:browser`):
//   1. bundles examples/browser/main.ts, with blockgrad's sources and gpu.js's browser build,
//      into examples/browser/dist/main.js (gitignored) with esbuild;
//   2. serves examples/browser/ over HTTP with node:http (no dependencies), and the package's
//      browser bundle under /dist/browser/ when `npm run build` has made it, cross-origin
//      isolated (COOP/COEP headers), so that the wasm backend can use shared memory and workers.
// Flags: --port N (default 8080; 0 picks a free port), --host H (default 127.0.0.1),
// --build-only (bundle, then exit). Once listening it prints one line, `serving <url>`, which
// test/browser/browser.test.ts reads to learn the port.
import { build } from 'esbuild';
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const exampleDir = join(root, 'examples', 'browser');
const browserDist = join(root, 'dist', 'browser');

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'build-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  console.error(`${err.message}\nusage: node scripts/serve-browser-example.mjs [--port 8080] [--host 127.0.0.1] [--build-only]`);
  process.exit(2);
}
if (args.help) {
  console.log('usage: node scripts/serve-browser-example.mjs [--port 8080] [--host 127.0.0.1] [--build-only]');
  process.exit(0);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be an integer in [0, 65535], got '${args.port}'`);
  process.exit(2);
}

// The same settings as the package's browser bundle (scripts/build.mjs): everything bundled,
// gpu.js through its "browser" field (dist/gpu-browser.js, which never loads the native `gl`).
const t0 = performance.now();
try {
  await build({
    absWorkingDir: root,
    entryPoints: ['examples/browser/main.ts'],
    outfile: 'examples/browser/dist/main.js',
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    mainFields: ['browser', 'module', 'main'],
    external: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)],
    sourcemap: true,
    logLevel: 'warning',
  });
} catch {
  // esbuild has printed the errors
  console.error('bundling examples/browser/main.ts failed');
  process.exit(1);
}
console.log(`bundled examples/browser/dist/main.js (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
if (args['build-only']) process.exit(0);

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The file a URL path names, or null when it falls outside the served folders. */
function fileFor(urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const [base, rest] = path.startsWith('/dist/browser/') ? [browserDist, path.slice('/dist/browser/'.length)] : [exampleDir, path.slice(1)];
  const file = resolve(base, rest || 'index.html');
  // no escaping the folder with '..'
  if (file !== base && !file.startsWith(base + sep)) return null;
  try {
    const stat = statSync(file);
    return stat.isDirectory() ? fileFor(`${urlPath.replace(/\/$/, '')}/index.html`) : file;
  } catch {
    return null;
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const file = req.method === 'GET' || req.method === 'HEAD' ? fileFor(url.pathname) : null;
  if (!file) {
    res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 404 : 405, { 'content-type': 'text/plain' });
    res.end(`not found: ${url.pathname}\n`);
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    // always the freshly built bundle
    'cache-control': 'no-store',
    // cross-origin isolation: the page may then share memory with Web Workers (SharedArrayBuffer),
    // which the wasm backend's memory is and its worker threads need
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  });
  if (req.method === 'HEAD') return res.end();
  // a file that vanishes or cannot be read after the stat ends this response, not the server
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
});

server.on('error', (err) => {
  console.error(err.code === 'EADDRINUSE' ? `port ${port} is in use: pass another with --port (0 picks a free one)` : String(err));
  process.exit(1);
});
server.listen(port, args.host, () => {
  const { port: actual } = server.address();
  const host = args.host.includes(':') ? `[${args.host}]` : args.host;
  console.log(`serving http://${host}:${actual}/`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // a browser's keep-alive connections would hold close() open
  });
}
