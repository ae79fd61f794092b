// options.ts types each value from the option table (KindValue): the one cast in resolveValues is
// safe only if parseValue really returns that type for each kind. Checked on every option.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OPTION_SPECS, OptionKey, OptionSpec, resolveValues } from '../src/options';

// A value of each kind, as it could come from a flag, the environment or the file.
const SAMPLE: Record<OptionSpec['kind'], string> = {
  boolean: 'true',
  string: 'x',
  integer: '7',
  integers: '7,8',
  number: '7',
  list: '7,8',
  choice: '',
  strings: 'a,b',
  duration: '90s',
};

function shape(v: unknown): string {
  if (Array.isArray(v)) return `${typeof v[0]}[]`;
  return typeof v;
}

// The 'strings' options check each value.
const VALID: Partial<Record<OptionKey, string>> = {
  allowMacPrefix: '02:aa',
  denyMacPrefix: '02:bb',
  allowAddress: '10.0.0.0/8',
  dbHost: '127.0.0.1',
};

const WANT: Record<OptionSpec['kind'], string> = {
  boolean: 'boolean',
  string: 'string',
  integer: 'number',
  integers: 'number[]',
  number: 'number',
  list: 'number[]',
  choice: 'string',
  strings: 'string[]',
  duration: 'number',
};

test('every option parses to the type its kind promises, from a value and from its default', () => {
  const argv: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTION_SPECS) as Array<[OptionKey, OptionSpec]>) {
    if (key === 'config' || key === 'dbPasswordFile' || key === 'redfishCa') continue; // files that must exist
    const inRange = spec.kind === 'number' || spec.kind === 'integer' ? String(spec.min ?? 1) : SAMPLE[spec.kind];
    argv[key] = VALID[key] ?? (spec.kind === 'choice' ? spec.choices?.[0] : inRange);
  }
  const given = resolveValues(argv, {});
  const defaults = resolveValues({}, {});
  for (const [key, spec] of Object.entries(OPTION_SPECS) as Array<[OptionKey, OptionSpec]>) {
    if (argv[key] !== undefined) assert.equal(shape(given[key]), WANT[spec.kind], `--${spec.flag} (${spec.kind})`);
    if (spec.default !== undefined) assert.equal(shape(defaults[key]), WANT[spec.kind], `default of --${spec.flag} (${spec.kind})`);
    else assert.equal(defaults[key], undefined, `--${spec.flag} has no default`);
  }
});
