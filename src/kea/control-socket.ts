import { createConnection } from 'node:net';

/** Kea's control-channel result codes (src/lib/cc/command_interpreter.h). */
export const KEA_SUCCESS = 0;
export const KEA_ERROR = 1;
export const KEA_UNSUPPORTED = 2;
export const KEA_EMPTY = 3;
export const KEA_CONFLICT = 4;

export interface KeaAnswer {
  result: number;
  text: string | null;
  arguments: unknown;
}

/** The socket could not be reached, timed out, or answered something that is not a Kea answer. */
export class KeaTransportError extends Error {
  override name = 'KeaTransportError';
}

/** Kea answered, with an error (result 1), unsupported command (2) or a conflict (4). */
export class KeaCommandError extends Error {
  override name = 'KeaCommandError';
  constructor(
    readonly command: string,
    readonly result: number,
    readonly text: string,
  ) {
    super(`${command}: ${text || `result ${result}`}`);
  }
}

export interface ControlSocketSettings {
  /** Per command: connect, send, read the whole answer. */
  timeoutMs: number;
  /** Most connections open at once. */
  concurrency: number;
  /** Larger answers are refused (a page of reservations is well below this). */
  maxAnswerBytes?: number;
  /** Told of every command and how it ended: its result code, or "error" (no valid answer). */
  observe?: (command: string, result: string) => void;
}

const DEFAULT_MAX_ANSWER = 32 * 1024 * 1024;

/**
 * Kea writes every byte >= 0x80 of a string as its own "\u00XX" escape (StringElement::toJSON uses
 * a signed char), so UTF-8 text comes back as one code point per byte. Undo that where it decodes.
 */
function fixKeaString(s: string): string {
  if (!/[\u0080-\u00ff]/.test(s) || /[^\u0000-\u00ff]/.test(s)) return s;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(s, 'latin1'));
  } catch {
    return s;
  }
}

export function fixKeaStrings(v: unknown): unknown {
  if (typeof v === 'string') return fixKeaString(v);
  if (Array.isArray(v)) return v.map(fixKeaStrings);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[fixKeaString(k)] = fixKeaStrings(x);
    return out;
  }
  return v;
}

/** Validates one answer's text as untrusted input. */
export function parseAnswer(command: string, text: string): KeaAnswer {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KeaTransportError(`${command}: the control socket answered something that is not JSON (${text.length} bytes)`);
  }
  // The Control Agent wraps answers in a one-element list; a daemon's own socket does not.
  if (Array.isArray(v) && v.length === 1) v = v[0];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new KeaTransportError(`${command}: the control socket's answer is not a JSON object`);
  }
  const o = v as Record<string, unknown>;
  if (typeof o.result !== 'number' || !Number.isInteger(o.result) || o.result < 0 || o.result > 4) {
    throw new KeaTransportError(`${command}: the answer has no valid "result"`);
  }
  if (o.text !== undefined && typeof o.text !== 'string') throw new KeaTransportError(`${command}: the answer's "text" is not a string`);
  return { result: o.result, text: typeof o.text === 'string' ? fixKeaString(o.text) : null, arguments: fixKeaStrings(o.arguments) };
}

/**
 * A client for one Kea daemon's UNIX control socket. Kea takes one command per connection and
 * closes it after the answer, so each command opens its own; at most `concurrency` are open.
 */
export class KeaControlSocket {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly path: string,
    private readonly settings: ControlSocketSettings,
  ) {}

  /** Sends one command; resolves with Kea's answer whatever its result code. */
  async send(command: string, args?: Record<string, unknown>): Promise<KeaAnswer> {
    await this.acquire();
    try {
      const answer = parseAnswer(command, await this.exchange(command, JSON.stringify(args ? { command, arguments: args } : { command })));
      this.settings.observe?.(command, String(answer.result));
      return answer;
    } catch (err) {
      this.settings.observe?.(command, 'error');
      throw err;
    } finally {
      this.release();
    }
  }

  /** Sends one command; answers other than success (0) and empty (3) throw KeaCommandError. */
  async call(command: string, args?: Record<string, unknown>): Promise<KeaAnswer> {
    const a = await this.send(command, args);
    if (a.result !== KEA_SUCCESS && a.result !== KEA_EMPTY) throw new KeaCommandError(command, a.result, a.text ?? '');
    return a;
  }

  private acquire(): Promise<void> {
    if (this.active < this.settings.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  private exchange(command: string, request: string): Promise<string> {
    const max = this.settings.maxAnswerBytes ?? DEFAULT_MAX_ANSWER;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const sock = createConnection(this.path);
      const fail = (msg: string): void => {
        if (settled) return;
        settled = true;
        sock.destroy();
        reject(new KeaTransportError(`${command}: ${msg}`));
      };
      sock.setTimeout(this.settings.timeoutMs, () => fail(`no answer from ${this.path} within ${this.settings.timeoutMs} ms`));
      sock.on('error', (err: NodeJS.ErrnoException) => fail(`${this.path}: ${err.code ?? err.message}`));
      sock.on('data', (d: Buffer) => {
        size += d.length;
        if (size > max) return fail(`answer larger than ${max} bytes`);
        chunks.push(d);
      });
      sock.on('end', () => {
        if (settled) return;
        settled = true;
        sock.destroy();
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      // No half-close: Kea reads until its JSON parser sees a whole command, answers, then closes.
      sock.write(request);
    });
  }
}
