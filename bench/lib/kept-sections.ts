// BENCHMARKS.md is rewritten whole by `make bench`; the sections that other benchmark commands write
// (make bench-redfish, bench/reconcile.ts) sit between markers naming their command and are kept.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BENCHMARKS_FILE = join(__dirname, '..', '..', 'BENCHMARKS.md');

const begin = (name: string) => `<!-- begin: ${name} -->`;
const end = (name: string) => `<!-- end: ${name} -->`;
const BLOCK = /<!-- begin: ([^>]+) -->\n[\s\S]*?<!-- end: \1 -->\n/g;

/** Every kept section of `text`, in order, markers included. */
export function keptSections(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((m) => m[0]);
}

/** Replaces the section of `name` in BENCHMARKS.md, or appends it. */
export function putSection(name: string, markdown: string, file = BENCHMARKS_FILE): void {
  const block = `${begin(name)}\n${markdown.trim()}\n${end(name)}\n`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const at = text.indexOf(begin(name));
  const stop = text.indexOf(end(name));
  const next = at >= 0 && stop > at ? text.slice(0, at) + block + text.slice(stop + end(name).length + 1) : `${text.trimEnd()}\n\n${block}`;
  writeFileSync(file, next);
}
