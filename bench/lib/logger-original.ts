// The logger as it was before the hot-path work (winston combine() chain + Console transport), kept
// verbatim so bench/log-cost.ts can measure it side by side with src/logger.ts in the same run.
import winston from 'winston';
import type { LogFormat, LogLevel } from '../../src/options';

export type Logger = winston.Logger;

// Values may come from DHCP clients: JSON-quote anything that is not a plain token so a
// hostile hostname cannot forge log lines or terminal escapes.
function renderValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string' && /^[\w.:/@+-]{1,200}$/.test(v)) return v;
  return JSON.stringify(v) ?? 'undefined';
}

const textFormat = winston.format.printf((info) => {
  const { level, message, timestamp, module, ...rest } = info as Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === 'string' && k !== 'splat')
    .map(([k, v]) => `${k}=${renderValue(v)}`)
    .join(' ');
  const mod = typeof module === 'string' && module !== '' ? ` [${module}]` : '';
  return `${String(timestamp)} ${String(level)}${mod} ${String(message)}${fields ? ' ' + fields : ''}`;
});

export function createLogger(level: LogLevel, format: LogFormat): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      format === 'json' ? winston.format.json() : textFormat,
    ),
    // Logs go to stderr so `--json` results on stdout stay machine-readable.
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}

/** Resolves once everything logged so far has been written. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 500);
    logger.on('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    logger.end();
  });
}
