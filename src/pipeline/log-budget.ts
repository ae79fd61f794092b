/**
 * At most `limit` log lines per window of `windowMs`, for messages anyone can provoke (a forged
 * NOTIFY costs its sender one statement; its log line must not cost the disk one line each).
 */
export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private held = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** log: write this line. heldBack: lines not written in the window that has just ended (say so once). */
  take(now = Date.now()): { log: boolean; heldBack: number } {
    let heldBack = 0;
    if (now - this.windowStart >= this.windowMs) {
      heldBack = this.held;
      this.windowStart = now;
      this.used = 0;
      this.held = 0;
    }
    if (this.used < this.limit) {
      this.used++;
      return { log: true, heldBack };
    }
    this.held++;
    return { log: false, heldBack };
  }
}
