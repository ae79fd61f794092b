import { Lease, leaseKey } from '../lease';
import type { HandledGroup } from './handled-group';

/** First in, first out, without Array.shift's cost on long queues of waiters. */
class Waiters {
  private items: Array<() => void> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(w: () => void): void {
    this.items.push(w);
  }

  /** Wakes up to `n` waiters, oldest first. */
  wake(n: number): void {
    while (n-- > 0 && this.head < this.items.length) {
      const w = this.items[this.head];
      this.items[this.head++] = noop;
      w();
    }
    if (this.head === this.items.length || this.head > 1024) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  wakeAll(): void {
    this.wake(this.length);
  }
}

const noop = (): void => undefined;

interface Entry {
  lease: Lease;
  waiters: Array<() => void>;
}

/**
 * Leases waiting to be written, coalesced by (hwaddr, subnet): news about a device replaces older
 * news about it, so a renewal storm costs one slot per device. Bounded: `offer` refuses past the
 * limit and `put` waits for room.
 */
export class LeaseQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly roomWaiters = new Waiters();
  private readonly itemWaiters = new Waiters();

  private closed = false;
  private highWater = 0;

  constructor(readonly limit: number) {}

  /** The most leases ever held or waiting for room at once (for tests and diagnostics). */
  get peak(): number {
    return this.highWater;
  }

  private notePeak(): void {
    const now = this.entries.size + this.roomWaiters.length;
    if (now > this.highWater) this.highWater = now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Adds without waiting; false when full (and the key is not already queued). */
  offer(lease: Lease, done?: () => void): boolean {
    if (this.closed) return false;
    const key = leaseKey(lease);
    const existing = this.entries.get(key);
    if (existing) {
      existing.lease = lease;
      if (done) existing.waiters.push(done);
      return true;
    }
    if (this.entries.size >= this.limit) return false;
    this.entries.set(key, { lease, waiters: done ? [done] : [] });
    this.notePeak();
    this.itemWaiters.wakeAll();
    if (this.fill && this.entries.size >= this.fill.n) {
      this.fill.resolve();
      this.fill = null;
    }
    return true;
  }

  /**
   * Adds, waiting for room; resolves when the lease has been handled (written, or rejected for
   * good). Rejects with QueueClosedError once the queue is closed, so a caller never mistakes a
   * stop for progress.
   */
  async put(lease: Lease): Promise<void> {
    let handled!: () => void;
    let abandoned!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      handled = resolve;
      abandoned = reject;
    });
    await this.admit(lease, handled);
    this.abandonOnClose.add(abandoned);
    return done.finally(() => this.abandonOnClose.delete(abandoned));
  }

  /**
   * Adds, waiting for room, as one of `group`'s leases; resolves as soon as it is queued. A reader of
   * pages queues the next page meanwhile instead of waiting for the disk, and awaits the group once.
   */
  async enqueueInto(lease: Lease, group: HandledGroup): Promise<void> {
    group.expect();
    try {
      await this.admit(lease, group.done);
    } catch (err) {
      group.done();
      throw err;
    }
    if (!this.groups.has(group)) {
      for (const g of this.groups) if (g.idle) this.groups.delete(g);
      this.groups.add(group);
    }
  }

  /** Offers `lease` with its waiter until it is taken; QueueClosedError once the queue closes. */
  private async admit(lease: Lease, done: () => void): Promise<void> {
    let woken = false;
    for (;;) {
      const before = this.entries.size;
      if (this.offer(lease, done)) {
        // Woken for a slot this lease did not need (it joined a queued one): pass the room on.
        if (woken && this.entries.size === before && before < this.limit) this.roomWaiters.wake(1);
        return;
      }
      if (this.closed) throw new QueueClosedError();
      const room = new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      this.notePeak();
      await room;
      woken = true;
    }
  }

  private readonly groups = new Set<HandledGroup>();
  private readonly abandonOnClose = new Set<(err: Error) => void>();

  /** Refuses new leases; callers still waiting on unwritten leases get QueueClosedError. */
  close(): void {
    this.closed = true;
    this.wakeAll();
  }

  /** After the writer has stopped: whatever is still queued will not be written by this process. */
  abandonRemaining(): number {
    const left = this.entries.size;
    this.entries.clear();
    for (const reject of [...this.abandonOnClose]) reject(new QueueClosedError());
    for (const group of this.groups) if (!group.idle) group.abandon(new QueueClosedError());
    this.groups.clear();
    return left;
  }

  /** Removes up to `max` entries, oldest first. */
  take(max: number): Entry[] {
    const out: Entry[] = [];
    for (const [key, entry] of this.entries) {
      if (out.length >= max) break;
      this.entries.delete(key);
      out.push(entry);
    }
    // As many putters as there is room for, not all of them: each woken one takes a slot or passes it on.
    if (out.length > 0) this.roomWaiters.wake(out.length);
    if (this.drain && this.entries.size <= this.drain.n) this.wakeDrain();
    return out;
  }

  private drain: { n: number; resolve: () => void } | null = null;

  /** Resolves once at most `n` entries are queued (one waiter at a time: a reader of pages bounds its read-ahead). */
  whenAtMost(n: number): Promise<void> {
    if (this.closed || this.entries.size <= n) return Promise.resolve();
    this.drain?.resolve();
    return new Promise((resolve) => (this.drain = { n, resolve }));
  }

  private wakeDrain(): void {
    this.drain?.resolve();
    this.drain = null;
  }

  /** Resolves when something is queued (or at once if something already is). */
  whenNotEmpty(): Promise<void> {
    if (this.entries.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.itemWaiters.push(resolve));
  }

  private fill: { n: number; resolve: () => void } | null = null;

  /** Resolves once `n` entries are queued (one waiter at a time: the writer's linger). */
  whenAtLeast(n: number): Promise<void> {
    if (this.entries.size >= n) return Promise.resolve();
    this.fill?.resolve();
    return new Promise((resolve) => (this.fill = { n, resolve }));
  }

  /** Wakes any waiter (used on stop). */
  wakeAll(): void {
    this.fill?.resolve();
    this.fill = null;
    this.wakeDrain();
    this.itemWaiters.wakeAll();
    this.roomWaiters.wakeAll();
  }

  /** Putters waiting for room (for tests and diagnostics). */
  get waitingPutters(): number {
    return this.roomWaiters.length;
  }
}

export type QueueEntry = ReturnType<LeaseQueue['take']>[number];

export class QueueClosedError extends Error {
  override name = 'QueueClosedError';
  constructor() {
    super('the monitor is stopping');
  }
}
