// HTTPS servers on loopback that answer like a device's web server would, including deliberately
// broken answers (HTML, oversized, invalid JSON, silence). A certificate per test from openssl.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { selfSignedArgs } from '../lib/self-signed';
import { tempDir } from './monitor';

export interface Cert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/** A self-signed certificate for `ip` (subjectAltName IP), made by openssl. */
export function selfSigned(ip: string, cn = ip): Cert {
  const dir = tempDir('klm-cert-');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', selfSignedArgs({ cn, ip, keyFile, certFile }), { stdio: 'ignore' });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

export interface Device {
  port: number;
  /** Headers of every request received. */
  requests: Array<{ url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export async function startDevice(
  cert: Cert,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
  host = '127.0.0.1',
): Promise<Device> {
  const requests: Device['requests'] = [];
  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const SERVICE_ROOT = {
  '@odata.id': '/redfish/v1/',
  '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
  RedfishVersion: '1.15.0',
  UUID: '92384634-2938-2342-8820-489239905423',
};

export function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
