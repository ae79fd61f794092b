/**
 * One GET of a device's service root over HTTPS, bounded in time and size. No credentials, no
 * cookies, no connection reuse, no DNS (the address is an IPv4 literal), no redirect followed here.
 */
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';

export interface GetSettings {
  /** The whole exchange: connect, TLS, headers and body. */
  timeoutMs: number;
  /** Past this many body bytes the answer is abandoned. */
  maxBytes: number;
  /** PEM of the CA to verify against; null: no verification (BMCs' certificates are self-signed). */
  ca: string | null;
  /** 443 unless a test says otherwise. */
  port: number;
}

export type GetResult =
  | { kind: 'answer'; status: number; location: string | null; body: Buffer }
  | { kind: 'too-large' }
  /** No answer: ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ECONNRESET, a TLS error... */
  | { kind: 'failed'; code: string };

export function httpsGet(address: string, path: string, s: GetSettings, signal: AbortSignal): Promise<GetResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: GetResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(r);
    };
    const req = request({
      host: address,
      port: s.port,
      path,
      method: 'GET',
      family: 4,
      agent: false,
      headers: { accept: 'application/json', 'user-agent': 'kea-lease-monitor', connection: 'close' },
      rejectUnauthorized: s.ca !== null,
      ...(s.ca !== null ? { ca: s.ca } : {}),
    });
    const timer = setTimeout(() => finish({ kind: 'failed', code: 'ETIMEDOUT' }), s.timeoutMs);
    const onAbort = (): void => finish({ kind: 'failed', code: 'ABORTED' });
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'failed', code: err.code ?? err.message }));
    req.on('response', (res: IncomingMessage) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > s.maxBytes) return finish({ kind: 'too-large' });
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > s.maxBytes) return finish({ kind: 'too-large' });
        chunks.push(chunk);
      });
      res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'failed', code: err.code ?? err.message }));
      res.on('end', () => {
        const location = typeof res.headers.location === 'string' ? res.headers.location : null;
        finish({ kind: 'answer', status: res.statusCode ?? 0, location, body: Buffer.concat(chunks) });
      });
    });
    if (signal.aborted) onAbort();
    req.end();
  });
}
