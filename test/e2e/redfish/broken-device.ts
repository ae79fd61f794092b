// A device's web server that answers badly on purpose (these are not Redfish implementations):
//   html | oversized | invalid-json | root-logging (a service root, each connection logged)
// Usage (inside the client namespace): node --import tsx broken-device.ts MODE ADDRESS CERT KEY
// Prints "LISTENING" once bound and "CONNECTION <peer>" for every TCP connection.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Socket } from 'node:net';

const [mode, address, certFile, keyFile] = process.argv.slice(2);
const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (_req, res) => {
  switch (mode) {
    case 'html':
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body><h1>Welcome to the BMC</h1></body></html>');
      return;
    case 'invalid-json':
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"@odata.id": "/redfish/v1/", "RedfishVersion": ');
      return;
    case 'oversized': {
      // A never-ending JSON string, chunked (no Content-Length): only the reader's bound stops it.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"@odata.id": "/redfish/v1/", "Vendor": "');
      const chunk = 'A'.repeat(65536);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
      return;
    }
    default:
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ '@odata.id': '/redfish/v1/', RedfishVersion: '1.0.0' }));
  }
});
server.on('connection', (s: Socket) => process.stdout.write(`CONNECTION ${s.remoteAddress}\n`));
server.listen(443, address, () => process.stdout.write('LISTENING\n'));
process.on('SIGTERM', () => process.exit(0));
