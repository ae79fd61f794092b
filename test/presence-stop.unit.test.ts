// A stopped daemon exits even when its presence connection hangs (a server that accepts and never answers).
import assert from 'node:assert/strict';
import { createServer, Socket } from 'node:net';
import { test } from 'node:test';
import { Presence } from '../src/db/presence';
import { buildOptions } from '../src/options';
import { memoryLogger } from './helpers/monitor';

test('Presence.stop returns within its wait while a connect hangs, and says so', async () => {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const o = buildOptions({ dbHost: '127.0.0.1', dbPort: port, dbConnectTimeout: 30 }, {});
  const { logger, logs } = memoryLogger();
  const p = new Presence(o.db, logger, 15_000);
  try {
    p.start();
    for (let i = 0; i < 100 && sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sockets.length, 1, 'the presence connection reached the silent server');
    const t0 = performance.now();
    await p.stop(300);
    const took = performance.now() - t0;
    assert.ok(took < 5000, `stop returned after ${took.toFixed(0)} ms, not after the 30 s connect timeout`);
    assert.ok(
      logs.some((l) => /presence connection did not close/.test(l)),
      'the wait that ran out is logged',
    );
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});
