// The source's import graph, read from the files: no cycles (no back-references), and the domain's
// words in src/domain, which imports nothing of the database, the sources or the pipeline.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(__dirname, '../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every relative import (type-only ones too) of each module, as paths relative to src without .ts. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom '(\.[^']+)'/gms)].map((m) =>
      relative(SRC, resolve(dirname(file), m[1])),
    );
    g.set(relative(SRC, file).replace(/\.ts$/, ''), deps);
  }
  return g;
}

/** One cycle, as a path, or null. */
function findCycle(g: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'open');
    path.push(n);
    for (const d of g.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of g.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

test('the modules import one another without a cycle', () => {
  const g = graph();
  assert.ok(g.size > 50, `read ${g.size} modules`);
  assert.equal(findCycle(g)?.join(' -> ') ?? null, null);
});

test('the cycle check finds a cycle when there is one', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
  ]);
  assert.deepEqual(findCycle(g), ['a', 'b', 'c', 'a']);
});

test("the domain's words live in src/domain, which imports only the lease and itself", () => {
  const g = graph();
  const domain = [...g.keys()].filter((m) => m.startsWith('domain/'));
  assert.deepEqual(domain.sort(), ['domain/error-class', 'domain/fence', 'domain/outcomes']);
  for (const m of domain) for (const d of g.get(m) ?? []) assert.ok(d === 'lease' || d.startsWith('domain/'), `${m} imports ${d}`);
  // The pipeline, the discovery writer and the writers' interface take those words from there, not from the SQL module.
  for (const m of ['pipeline/writer', 'discovery', 'writers/backend', 'writers/kea-api', 'ha/leadership'])
    for (const d of g.get(m) ?? []) assert.ok(!/^db\/reservation/.test(d), `${m} imports ${d}`);
});

/** Every module `from` reaches through its imports (itself excluded). */
function reach(g: Map<string, string[]>, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [...(g.get(from) ?? [])];
  for (let m = todo.pop(); m !== undefined; m = todo.pop()) {
    if (seen.has(m)) continue;
    seen.add(m);
    todo.push(...(g.get(m) ?? []));
  }
  return seen;
}

test('no hidden back-edges: the writer reaches no source, the NOTIFY source no discovery writer; the reconciler knows both', () => {
  const g = graph();
  const fromWriter = [...reach(g, 'pipeline/writer')];
  assert.deepEqual(
    fromWriter.filter((m) => m.startsWith('sources/') || m.startsWith('reconcile/')),
    [],
    'the writer reports outcomes to an observer it is given; it never names the source or the reconciler',
  );
  assert.ok(!(g.get('sources/notify') ?? []).includes('discovery'), 'sources/notify imports discovery');
  assert.ok(!reach(g, 'sources/notify').has('reconcile/reconciler'), 'the NOTIFY source reports to ListenerEvents, not to the reconciler');
  assert.ok(!reach(g, 'sources/catch-up').has('discovery'), 'catch-up is handed the record stems, it does not read the directory');
  const reconciler = g.get('reconcile/reconciler') ?? [];
  for (const d of ['sources/catch-up', 'discovery', 'pipeline/writer'])
    assert.ok(reconciler.includes(d), `reconcile/reconciler imports ${d}`);
  // And in the text, not only the imports: no callback into the source is wired into the writer.
  const monitor = readFileSync(join(SRC, 'monitor.ts'), 'utf8');
  assert.doesNotMatch(monitor, /onStale|notify\?*\.recheck/);
});
