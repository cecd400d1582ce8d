/** Serves the built UI (dist/renderer) read-only: GET and HEAD, no directory listings, nothing outside it. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** Answers a GET/HEAD for a file under `root`; `/` is index.html. Anything else is 404 or 405. */
export async function serveFile(
  root: string,
  pathname: string,
  request: IncomingMessage,
  response: ServerResponse,
  headers: Record<string, string>,
): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    reply(response, 405, 'Only GET and HEAD are served here.', { allow: 'GET, HEAD' });
    return;
  }
  let relative: string;
  try {
    relative = decodeURIComponent(pathname === '/' ? '/index.html' : pathname);
  } catch {
    reply(response, 400, 'The path is not valid.');
    return;
  }
  const base = resolve(root);
  const file = normalize(join(base, relative));
  if (relative.includes('\0') || !file.startsWith(base + sep)) {
    reply(response, 404, 'Not found.');
    return;
  }
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    const missingUi = relative === '/index.html';
    reply(
      response,
      missingUi ? 503 : 404,
      missingUi ? 'The Berth UI is not built. Run `npm run build:ui`, then reload.' : 'Not found.',
    );
    return;
  }
  response.writeHead(200, {
    ...headers,
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': String(info.size),
    'cache-control': 'no-cache',
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(file)
    .on('error', () => response.destroy())
    .pipe(response);
}

/** A short plain-text answer. */
export function reply(
  response: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  response.end(`${text}\n`);
}
