/**
 * One GET of a device's service root over HTTPS, bounded in time and size. No credentials, no
 * cookies, no connection or session reuse, no DNS (the address is an IPv4 literal), no redirect
 * followed here.
 */
import type { IncomingMessage } from 'node:http';
import { Agent, request, RequestOptions } from 'node:https';
import type { ConnectionOptions, SecureContext } from 'node:tls';

export interface GetSettings {
  /** The whole exchange: connect, TLS, headers and body. */
  timeoutMs: number;
  /** Past this many body bytes the answer is abandoned. */
  maxBytes: number;
  /**
   * Made once (prober.ts): a context per request costs about three times the CPU of the attempt.
   * Holds the --redfish-ca certificate when `verify` is on.
   */
  secureContext: SecureContext;
  /** Verify the certificate against the context's CA; off by default (BMCs' certificates are self-signed). */
  verify: boolean;
  /** Shared, so no Agent is built per request (agent: false does); it keeps no socket and no TLS session. */
  agent: Agent;
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
    // https.request hands secureContext on to tls.connect; @types/node's RequestOptions does not list it.
    const options: RequestOptions & Pick<ConnectionOptions, 'secureContext'> = {
      host: address,
      port: s.port,
      path,
      method: 'GET',
      family: 4,
      agent: s.agent,
      headers: { accept: 'application/json', 'user-agent': 'kea-lease-monitor', connection: 'close' },
      secureContext: s.secureContext,
      rejectUnauthorized: s.verify,
    };
    const req = request(options);
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
