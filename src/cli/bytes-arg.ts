// Keys and values on the command line and in the shell: plain text (UTF-8), \xNN
// escapes (\\ for a backslash), or hex with --hex. Output uses the same escaping, so
// what is printed can be typed back.
import { parseEscapedBytes } from '../config/server-config.js';
import { printable } from '../keys/bytes.js';

export function parseBytesArg(s: string, hex: boolean, what = 'argument'): Uint8Array {
  if (!hex) {
    // Node decodes the command line (and the shell's input) as UTF-8 and turns each byte
    // that is not UTF-8 into U+FFFD: `txkv set $'k\xff' a` and `txkv set $'k\xfe' b` wrote one
    // key, "k\xef\xbf\xbd", and a value with such a byte was stored changed. The bytes
    // are gone by now, so any U+FFFD is refused; the character itself is \xef\xbf\xbd.
    const bad = s.indexOf('\uFFFD');
    if (bad >= 0) {
      throw new Error(
        `${what} ${JSON.stringify(s)} has U+FFFD at offset ${bad}: a byte that is not UTF-8 (e.g. $'\\xff' in the shell) arrives as U+FFFD, so the bytes meant are lost; ` +
          'write such bytes as \\xNN escapes (\\xff), or use --hex (U+FFFD itself is \\xef\\xbf\\xbd)',
      );
    }
    // a backslash starts \xNN or \\ and nothing else: `\xZZ` is a typing mistake, never the literal text
    for (let i = 0; i < s.length; i++) {
      if (s[i] !== '\\') continue;
      if (s[i + 1] === '\\') i++;
      else if (s[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) i += 3;
      else throw new Error(`${what} ${JSON.stringify(s)}: bad escape ${JSON.stringify(s.slice(i, i + 4))} at offset ${i}: write \\xNN with two hex digits, or \\\\ for a backslash`);
    }
    return parseEscapedBytes(s);
  }
  const h = s.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(h)) throw new Error(`${what} ${JSON.stringify(s)} is not hex (pairs of 0-9a-f)`);
  return new Uint8Array(Buffer.from(h, 'hex'));
}

/** Printable form: ASCII as is, other bytes and backslash as \xNN; or hex. */
export function formatBytes(b: Uint8Array, hex: boolean): string {
  return hex ? Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex') : printable(b, Number.MAX_SAFE_INTEGER);
}
