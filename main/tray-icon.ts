/**
 * The tray icon for each state, drawn in code as a small PNG so each state differs in shape as well as in
 * colour (readable without colour vision): up a filled disc, partial a half-filled ring, failing a disc
 * with a bar, idle an empty ring.
 */
import { crc32, deflateSync } from 'node:zlib';
import type { TrayState } from './tray-menu.js';

const COLOURS: Record<TrayState, [number, number, number]> = {
  up: [0x2e, 0x9d, 0x4b],
  partial: [0xd4, 0x9a, 0x00],
  failing: [0xd0, 0x31, 0x2d],
  idle: [0x8a, 0x8a, 0x8a],
};

/** The RGBA pixels of the icon for `state`, `size` pixels square. */
export function trayPixels(state: TrayState, size: number): Uint8Array {
  const pixels = new Uint8Array(size * size * 4);
  const [r, g, b] = COLOURS[state];
  const c = (size - 1) / 2;
  const outer = size / 2 - 0.5;
  const inner = outer - Math.max(1.5, size / 8);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const d = Math.hypot(x - c, y - c);
      let on = false;
      let white = false;
      if (d <= outer) {
        const ring = d >= inner;
        if (state === 'up') on = true;
        else if (state === 'idle') on = ring;
        else if (state === 'partial') on = ring || x <= c;
        else {
          on = true;
          white = Math.abs(y - c) <= size / 10 && Math.abs(x - c) <= inner * 0.7;
        }
      }
      if (!on) continue;
      const i = (y * size + x) * 4;
      pixels.set(white ? [255, 255, 255, 255] : [r, g, b, 255], i);
    }
  }
  return pixels;
}

/** The icon for `state` as PNG bytes (8-bit RGBA). */
export function trayPng(state: TrayState, size = 16): Buffer {
  const pixels = trayPixels(state, size);
  // Each scanline starts with filter byte 0 (None).
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y += 1) {
    raw[y * (size * 4 + 1)] = 0;
    raw.set(pixels.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
