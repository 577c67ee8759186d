// The dashboard's GET routes: the page (src/dashboard/index.html, served as is, no
// build step) and uPlot's files from node_modules/uplot/dist. Main thread; files are
// read once, on first request. Without uPlot the page still shows its numbers.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A GET route; `public`: served without a token even with auth.protectStatus (static files, no data). */
export type Page = (() => Promise<[string, string | Uint8Array]>) & { public?: boolean };

/** The txkv package's root (the folder of its package.json), from sources or dist alike. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string }).name === 'txkv') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('the txkv package root (package.json) was not found above the dashboard');
    dir = up;
  }
}

function uplotDir(root: string): string {
  try {
    return path.dirname(createRequire(path.join(root, 'package.json')).resolve('uplot/package.json')) + '/dist';
  } catch {
    return path.join(root, 'node_modules', 'uplot', 'dist');
  }
}

function cached(file: () => string, contentType: string): Page {
  let body: Buffer | null = null;
  const page: Page = async () => {
    body ??= fs.readFileSync(file());
    return [contentType, body];
  };
  page.public = true; // the page and its scripts hold no data; the JSON it polls is protected
  return page;
}

const FAVICON: Page = Object.assign(
  async (): Promise<[string, string]> => ['image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#4ea1ff"/></svg>'],
  { public: true },
);

/** Every .js file under `dir` (recursively), as paths relative to it. */
function jsFiles(dir: string, rel = ''): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return jsFiles(path.join(dir, e.name), `${rel}${e.name}/`);
    return e.name.endsWith('.js') ? [`${rel}${e.name}`] : [];
  });
}

/**
 * The browser SDK for the dashboard's live-keys panel: the compiled browser-safe modules
 * (dist/src/{client,protocol,keys}, errors.js) at /sdk/..., and flatbuffers' ES modules at
 * /sdk/flatbuffers/... (the page's import map resolves 'flatbuffers' there). Static code,
 * no data: public like the page.
 */
export function sdkPages(): Record<string, Page> {
  const root = packageRoot();
  const dist = path.join(root, 'dist', 'src');
  const out: Record<string, Page> = {};
  for (const sub of ['client', 'protocol', 'keys']) {
    for (const f of jsFiles(path.join(dist, sub))) out[`/sdk/${sub}/${f}`] = cached(() => path.join(dist, sub, f), 'text/javascript; charset=utf-8');
  }
  out['/sdk/errors.js'] = cached(() => path.join(dist, 'errors.js'), 'text/javascript; charset=utf-8');
  let fb: string;
  try {
    fb = path.join(path.dirname(createRequire(path.join(root, 'package.json')).resolve('flatbuffers/package.json')), 'mjs');
  } catch {
    fb = path.join(root, 'node_modules', 'flatbuffers', 'mjs');
  }
  for (const f of jsFiles(fb)) out[`/sdk/flatbuffers/${f}`] = cached(() => path.join(fb, f), 'text/javascript; charset=utf-8');
  return out;
}

/**
 * Routes: `/` (the page), `/dashboard/uPlot.iife.min.js`, `/dashboard/uPlot.min.css`. With
 * auth.protectStatus the page loads without a token and sends the one in its URL
 * fragment (/#token=...) with its requests for /v1/status and /v1/metrics.json.
 */
export function dashboardPages(): Record<string, Page> {
  let root: string | null = null;
  const at = (...parts: string[]): (() => string) => () => path.join((root ??= packageRoot()), ...parts);
  const uplot = (name: string): (() => string) => () => path.join(uplotDir((root ??= packageRoot())), name);
  return {
    '/': cached(at('src', 'dashboard', 'index.html'), 'text/html; charset=utf-8'),
    '/dashboard/uPlot.iife.min.js': cached(uplot('uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
    '/dashboard/uPlot.min.css': cached(uplot('uPlot.min.css'), 'text/css; charset=utf-8'),
    // browsers ask for it on every page load; without it each visit counted a NOT_FOUND error
    '/favicon.ico': FAVICON,
    ...sdkPages(),
  };
}
