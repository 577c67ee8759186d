// Shared-secret tokens. Main thread. Tokens are compared in constant time (SHA-256
// digests compared with timingSafeEqual, so neither content nor length leaks through
// timing) and never logged or echoed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AuthConfig } from '../config/server-config.js';

export type Access = 'none' | 'read' | 'write';

interface Entry {
  digest: Buffer;
  access: Access;
}

const digest = (s: string): Buffer => crypto.createHash('sha256').update(s, 'utf8').digest();

export class TokenStore {
  private readonly entries: Entry[];

  constructor(cfg: AuthConfig) {
    const entries: Entry[] = [];
    for (const t of cfg.tokens) if (t) entries.push({ digest: digest(t), access: 'write' });
    for (const t of cfg.readOnlyTokens) if (t) entries.push({ digest: digest(t), access: 'read' });
    if (cfg.tokenFile) {
      let text: string;
      try {
        text = fs.readFileSync(cfg.tokenFile, 'utf8');
      } catch (err) {
        throw new Error(`auth.tokenFile ${cfg.tokenFile} cannot be read: ${(err as Error).message}`);
      }
      for (const raw of text.split(/\r?\n/)) {
        const line = raw.trim();
        if (!line || line.startsWith('#')) continue;
        if (line.startsWith('ro:')) entries.push({ digest: digest(line.slice(3)), access: 'read' });
        else entries.push({ digest: digest(line), access: 'write' });
      }
    }
    this.entries = entries;
  }

  /** Whether the server requires a token at all. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** What a presented token may do: 'write' without auth configured; 'none' for a wrong or missing token. */
  check(token: string | undefined | null): Access {
    if (!this.enabled) return 'write';
    if (!token) return 'none';
    const d = digest(token);
    let access: Access = 'none';
    // look at every entry so that timing does not tell which one matched
    for (const e of this.entries) if (crypto.timingSafeEqual(e.digest, d) && access !== 'write') access = e.access;
    return access;
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
