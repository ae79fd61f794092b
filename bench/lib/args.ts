// The benchmarks' command lines, parsed strictly: an unknown flag, a missing value or a value out of its
// list exits 2 naming it, before anything starts (a mistyped flag must not start a 30-minute run that
// rewrites BENCHMARKS.md). --help prints the usage and exits 0.
import { parseArgs } from 'node:util';

export interface BenchOption {
  type: 'string' | 'boolean';
  help: string;
  /** For a string: a comma-separated list whose every element must be one of these. */
  oneOf?: readonly string[];
  /** With oneOf: exactly one of them, not a list. */
  single?: boolean;
  /** For a string: a whole number, at least 1. */
  count?: boolean;
  /** For a string: a comma-separated list of whole numbers, each at least 1. */
  counts?: boolean;
}

export type BenchValues<T extends Record<string, BenchOption>> = {
  [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string;
};

function usage(script: string, summary: string, spec: Record<string, BenchOption>): string {
  const lines = Object.entries(spec).map(([name, o]) => {
    const left = `  --${name}${o.type === 'string' ? ' VALUE' : ''}`;
    const choices = o.oneOf ? ` (of: ${o.oneOf.join(',')})` : '';
    return `${left.padEnd(22)} ${o.help}${choices}`;
  });
  return [`usage: node --import tsx ${script} [options]`, summary, '', ...lines, `${'  --help'.padEnd(22)} this text`, ''].join('\n');
}

function check(name: string, value: string, o: BenchOption): string | null {
  if (o.count && !/^[1-9]\d*$/.test(value)) return `--${name} ${JSON.stringify(value)}: not a whole number of at least 1`;
  const parts = value.split(',');
  if (o.single && parts.length > 1) return `--${name} ${JSON.stringify(value)}: one value, not a list`;
  if (o.counts && parts.some((p) => !/^[1-9]\d*$/.test(p))) return `--${name} ${JSON.stringify(value)}: not a list of whole numbers`;
  const bad = o.oneOf ? parts.filter((p) => !o.oneOf!.includes(p)) : [];
  if (bad.length > 0) return `--${name}: unknown ${bad.map((b) => JSON.stringify(b)).join(', ')} (of: ${o.oneOf!.join(',')})`;
  return null;
}

/** Parses `argv` by `spec`; exits 2 (with the usage on stderr) on anything it does not know. */
export function benchArgs<T extends Record<string, BenchOption>>(
  script: string,
  summary: string,
  spec: T,
  argv: string[] = process.argv.slice(2),
): BenchValues<T> {
  const text = usage(script, summary, spec);
  const options = Object.fromEntries(Object.entries(spec).map(([k, o]) => [k, { type: o.type }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (err) {
    process.stderr.write(`${script}: ${(err as Error).message}\n\n${text}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(text);
    process.exit(0);
  }
  for (const [name, o] of Object.entries(spec)) {
    const v = values[name];
    const problem = typeof v === 'string' ? check(name, v, o) : null;
    if (problem) {
      process.stderr.write(`${script}: ${problem}\n\n${text}`);
      process.exit(2);
    }
  }
  return values as BenchValues<T>;
}
