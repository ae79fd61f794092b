/**
 * Readiness as the parts of the monitor report it: each component says whether it is ready and, if
 * not, why. `/readyz` is ready when every registered component is; `/healthz` only says the process
 * answers.
 */
export class Health {
  // component -> reason it is not ready (null: ready)
  private readonly components = new Map<string, string | null>();

  /** Marks a component ready, or not ready with a short reason an operator can act on. */
  set(component: string, ready: boolean, reason = 'not ready'): void {
    this.components.set(component, ready ? null : reason);
  }

  /** Drops a component that no longer takes part (e.g. a source that has stopped). */
  remove(component: string): void {
    this.components.delete(component);
  }

  /** Ready when at least one component reported and none is failing; else the reasons, one per component. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    for (const [component, reason] of this.components) if (reason !== null) reasons.push(`${component}: ${reason}`);
    if (this.components.size === 0) reasons.push('starting');
    return { ready: reasons.length === 0, reasons };
  }
}
