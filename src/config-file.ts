/**
 * The YAML config file (--config FILE): its keys are the long flag names of `run`, its values a
 * scalar or a list of scalars. It sits between the defaults and the KEA_LM_* environment. The
 * Ansible role renders it from group_vars, so every mistake is refused here, naming key and file.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { UsageError } from './errors';
import { checkValue, ConfigValues, OPTION_SPECS, OptionKey, RawValues } from './options';

const BY_FLAG = new Map<string, OptionKey>(
  (Object.keys(OPTION_SPECS) as OptionKey[]).filter((k) => k !== 'config').map((k) => [OPTION_SPECS[k].flag, k]),
);

type Scalar = string | number | boolean;

function isScalar(v: unknown): v is Scalar {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

export function parseConfigText(text: string, file: string): ConfigValues {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) throw new UsageError(`${file}: not valid YAML: ${doc.errors[0].message.split('\n')[0]}`);
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return { file, values: {} };
  if (typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`${file}: must be a mapping of flag names to values`);
  const values: RawValues = {};
  for (const [flag, value] of Object.entries(data as Record<string, unknown>)) {
    const key = BY_FLAG.get(flag);
    if (!key) throw new UsageError(`${file}: unknown key "${flag}" (keys are the long flag names of \`run\`, such as subnet-id)`);
    const ok = isScalar(value) || (Array.isArray(value) && value.every(isScalar));
    if (!ok) throw new UsageError(`${file}: key "${flag}" must be a scalar or a list of scalars`);
    if (Array.isArray(value) && OPTION_SPECS[key].kind !== 'list' && OPTION_SPECS[key].kind !== 'strings') {
      throw new UsageError(`${file}: key "${flag}" takes one value, not a list`);
    }
    checkValue(key, value, `${file}: ${flag}`);
    values[key] = value;
  }
  return { file, values };
}

export function loadConfigFile(file: string): ConfigValues {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfigText(text, file);
}
