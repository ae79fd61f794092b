import { AddressInfo, createServer, connect, NetConnectOpts, Server, Socket } from 'node:net';

interface Pair {
  a: Socket;
  b: Socket | null;
  held: Array<['up' | 'down', Buffer]>;
}

/**
 * A loopback TCP proxy that can stop forwarding in both directions without closing anything: what
 * a half-open path (a pulled cable, a frozen VM, a firewall dropping packets) looks like to both
 * ends. While paused, bytes are held (as TCP would retransmit them) and new connections are
 * accepted but not forwarded. resume() delivers what was held.
 */
export class TcpProxy {
  private paused = false;
  private readonly pairs = new Set<Pair>();
  private readonly waiting: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on 127.0.0.1 (a random port) and forwards to `target` (host/port or a unix socket path). */
  static async start(target: NetConnectOpts): Promise<TcpProxy> {
    const ref: { proxy?: TcpProxy } = {};
    const server = createServer((a) => ref.proxy?.accept(a, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ref.proxy = new TcpProxy(server, (server.address() as AddressInfo).port);
    return ref.proxy;
  }

  /** Connections seen so far that are still open. */
  get open(): number {
    return this.pairs.size;
  }

  private accept(a: Socket, target: NetConnectOpts): void {
    const pair: Pair = { a, b: null, held: [] };
    this.pairs.add(pair);
    const close = (): void => {
      a.destroy();
      pair.b?.destroy();
      this.pairs.delete(pair);
    };
    a.on('error', close).on('close', close);
    const wire = (): void => {
      if (a.destroyed) return;
      const b = connect(target);
      pair.b = b;
      b.on('error', close).on('close', close);
      b.on('data', (d: Buffer) => this.forward(pair, 'down', d));
    };
    a.on('data', (d: Buffer) => this.forward(pair, 'up', d));
    if (this.paused) this.waiting.push(wire);
    else wire();
  }

  private forward(pair: Pair, dir: 'up' | 'down', d: Buffer): void {
    if (this.paused || !pair.b) pair.held.push([dir, d]);
    else (dir === 'up' ? pair.b : pair.a).write(d);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const wire of this.waiting.splice(0)) wire();
    for (const pair of this.pairs) {
      for (const [dir, d] of pair.held.splice(0)) {
        const dest = dir === 'up' ? pair.b : pair.a;
        if (dest && !dest.destroyed) dest.write(d);
      }
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.a.destroy();
      p.b?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
