import winston from 'winston';
import { StderrTransport } from './log-sink';
import type { LogFormat, LogLevel } from './options';

export type Logger = winston.Logger;

// triple-beam's key for the formatted line, read by transports.
const MESSAGE = Symbol.for('message');
const PLAIN = /^[\w.:/@+-]{1,200}$/;

// Values may come from DHCP clients: JSON-quote anything that is not a plain token so a
// hostile hostname cannot forge log lines or terminal escapes.
function renderValue(v: unknown): string {
  switch (typeof v) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'string':
      if (PLAIN.test(v)) return v;
  }
  try {
    return JSON.stringify(v) ?? 'undefined';
  } catch {
    return '"[unserializable]"';
  }
}

// One ISO string per millisecond rather than one Date per line.
let lastMs = -1;
let lastIso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

const NOT_FIELDS = new Set(['level', 'message', 'timestamp', 'module', 'splat']);

/** `<ISO ts> <level> [module] message k=v ...` */
function textLine(info: Record<string, unknown>): string {
  const { module } = info;
  let line = `${String(info.timestamp)} ${String(info.level)}${typeof module === 'string' && module !== '' ? ` [${module}]` : ''} ${String(info.message)}`;
  for (const k of Object.keys(info)) {
    if (!NOT_FIELDS.has(k)) line += ` ${k}=${renderValue(info[k])}`;
  }
  return line;
}

// winston's json format (safe-stable-stringify: keys sorted, bigint as a string) is the reference;
// it is used as is for anything but flat objects of strings, numbers, booleans and nulls.
const winstonJson = winston.format.json();

/**
 * The same bytes as winston.format.json() for a flat object, without its per-line setup: the values
 * copied in sorted key order, then one native JSON.stringify. Keys JSON.stringify would not keep in
 * that order (array indexes) or could not set (__proto__) go the reference way.
 */
function jsonLine(info: Record<string, unknown>): string | null {
  const keys = Object.keys(info);
  for (const k of keys) {
    const v = info[k];
    const t = typeof v;
    if (v !== null && t !== 'string' && t !== 'number' && t !== 'boolean' && t !== 'undefined') return null;
    const c = k.charCodeAt(0);
    if ((c >= 48 && c <= 57) || k === '__proto__') return null;
  }
  keys.sort();
  const sorted: Record<string, unknown> = {};
  for (const k of keys) sorted[k] = info[k];
  return JSON.stringify(sorted);
}

const errorsFormat = winston.format.errors({ stack: false });

/** timestamp + errors + text or json in one pass, instead of a combine() chain. Exported for tests. */
export const lineFormat = winston.format((info, opts) => {
  info.timestamp = isoNow();
  // Only when an Error object is logged: winston's own errors format, as before.
  if (info instanceof Error || info.message instanceof Error) info = errorsFormat.transform(info, errorsFormat.options) as typeof info;
  const fields = info as unknown as Record<string, unknown>;
  if (!(opts as { json?: boolean }).json) (info as unknown as Record<symbol, unknown>)[MESSAGE] = textLine(fields);
  else {
    const line = jsonLine(fields);
    if (line !== null) (info as unknown as Record<symbol, unknown>)[MESSAGE] = line;
    else info = winstonJson.transform(info, winstonJson.options) as typeof info;
  }
  return info;
});

export function createLogger(level: LogLevel, format: LogFormat): Logger {
  const logger = winston.createLogger({
    level,
    format: lineFormat({ json: format === 'json' }),
    // Logs go to stderr so `--json` results on stdout stay machine-readable.
    transports: [new StderrTransport()],
  });
  skipDisabledLevels(logger);
  return logger;
}

/**
 * winston builds, formats and pipes a line before its transport drops it for its level; a debug line
 * at --log-level info would cost as much as a written one. Check the level first. The methods are
 * on this logger's own prototype (winston makes one class per createLogger), children included.
 * That is winston's internals, so package.json pins winston exactly; test/logger.unit.test.ts
 * checks the behaviour on every upgrade.
 */
function skipDisabledLevels(logger: Logger): void {
  const proto = Object.getPrototypeOf(logger) as Record<string, (this: Logger, ...args: unknown[]) => Logger>;
  for (const name of Object.keys(logger.levels)) {
    const write = proto[name];
    const rank = logger.levels[name];
    proto[name] = function (this: Logger, message: unknown, meta: unknown): Logger {
      const self = this ?? logger;
      const enabled = self.levels[self.level];
      if (enabled !== undefined && rank > enabled) return self;
      // The usual call, (message, fields): what winston's own method would do, without its rest array.
      if (arguments.length === 2 && typeof message === 'string') return self.log(name, message, meta);
      // eslint-disable-next-line prefer-rest-params
      return write.apply(self, arguments as unknown as unknown[]);
    };
  }
}

/** Resolves once everything logged so far has been written. */
export function flushLogger(logger: Logger): Promise<void> {
  for (const t of logger.transports) if (t instanceof StderrTransport) t.flush();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 500);
    logger.on('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    logger.end();
  });
}
