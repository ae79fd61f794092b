// A fake kea-dhcp4 control socket for unit tests of the Kea API writer: a UNIX socket that takes one JSON
// command per connection and answers the way kea-dhcp4 3.0.4 with host_cmds does (texts taken from
// libdhcp_host_cmds.so and libdhcp_pgsql.so of Debian's 3.0.4), over an in-memory hosts table.
import { createServer, Server, Socket } from 'node:net';
import { join } from 'node:path';

export interface FakeHost {
  subnetId: number;
  mac: string; // "aa:bb:cc:dd:ee:ff"
  ip: string;
  hostname: string;
  userContext?: Record<string, unknown>;
}

export interface Answer {
  result: number;
  text?: string;
  arguments?: unknown;
}

export interface Call {
  command: string;
  arguments: Record<string, unknown>;
}

interface Options {
  /** host_cache loaded: adds cache-get to list-commands (the writer then looks before adding). */
  hostCache?: boolean;
  /** Dhcp4 "ip-reservations-unique". */
  ipReservationsUnique?: boolean;
}

const COMMANDS = [
  'list-commands',
  'config-get',
  'reservation-add',
  'reservation-get',
  'reservation-get-by-address',
  'reservation-get-page',
  'reservation-del',
  'reservation-update',
];

function hostJson(h: FakeHost): Record<string, unknown> {
  return {
    'boot-file-name': '',
    'client-classes': [],
    hostname: h.hostname,
    'hw-address': h.mac,
    'ip-address': h.ip,
    'next-server': '0.0.0.0',
    'option-data': [],
    'server-hostname': '',
    'subnet-id': h.subnetId,
    ...(h.userContext ? { 'user-context': h.userContext } : {}),
  };
}

export class FakeKea {
  readonly hosts: FakeHost[] = [];
  readonly calls: Call[] = [];
  /** Answers that replace the normal one when `when` says so (an injected error). */
  private readonly overrides: { command: string; when: (args: Record<string, unknown>) => boolean; answer: Answer }[] = [];

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly options: Options,
  ) {}

  static async start(dir: string, options: Options = {}): Promise<FakeKea> {
    const path = join(dir, `kea-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
    const server = createServer();
    const fake = new FakeKea(path, server, options);
    server.on('connection', (sock: Socket) => fake.serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    return fake;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Calls of one command, or of every reservation-* command when none is given. */
  count(command?: string): number {
    return this.calls.filter((c) => (command ? c.command === command : c.command.startsWith('reservation-'))).length;
  }

  /** From now on, `command` answers `answer` whenever `when(arguments)` holds (the latest such rule wins). */
  answer(command: string, when: (args: Record<string, unknown>) => boolean, answer: Answer): void {
    this.overrides.push({ command, when, answer });
  }

  private serve(sock: Socket): void {
    let text = '';
    sock.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      let req: { command?: string; arguments?: Record<string, unknown> };
      try {
        req = JSON.parse(text) as typeof req;
      } catch {
        return; // not all of it yet: Kea reads until its parser sees a whole command
      }
      const call = { command: String(req.command), arguments: req.arguments ?? {} };
      this.calls.push(call);
      sock.end(JSON.stringify(this.handle(call)));
    });
    sock.on('error', () => undefined);
  }

  private handle({ command, arguments: a }: Call): Answer {
    const o = this.overrides.findLast((x) => x.command === command && x.when(a));
    if (o) return o.answer;
    const find = (subnet: unknown, mac: unknown) => this.hosts.findIndex((h) => h.subnetId === subnet && h.mac === mac);
    switch (command) {
      case 'list-commands':
        return { result: 0, arguments: [...COMMANDS, ...(this.options.hostCache ? ['cache-get'] : [])] };
      case 'config-get':
        return { result: 0, arguments: { Dhcp4: { 'ip-reservations-unique': this.options.ipReservationsUnique ?? true } } };
      case 'reservation-get': {
        const i = find(a['subnet-id'], a.identifier);
        return i < 0 ? { result: 3, text: 'Host not found.' } : { result: 0, text: 'Host found.', arguments: hostJson(this.hosts[i]) };
      }
      case 'reservation-get-by-address': {
        const hosts = this.hosts.filter((h) => h.ip === a['ip-address'] && h.subnetId === a['subnet-id']).map(hostJson);
        return { result: hosts.length ? 0 : 3, text: `${hosts.length} IPv4 host(s) found.`, arguments: { hosts } };
      }
      case 'reservation-get-page': {
        const from = Number(a.from ?? 0);
        const page = this.hosts.slice(from, from + Number(a.limit ?? 100));
        if (page.length === 0) return { result: 3, text: '0 IPv4 host(s) found.', arguments: { count: 0, hosts: [] } };
        return {
          result: 0,
          text: `${page.length} IPv4 host(s) found.`,
          arguments: { count: page.length, hosts: page.map(hostJson), next: { from: from + page.length, 'source-index': 1 } },
        };
      }
      case 'reservation-add': {
        const r = a.reservation as Record<string, unknown>;
        const unique = this.options.ipReservationsUnique ?? true;
        if (
          find(r['subnet-id'], r['hw-address']) >= 0 ||
          (unique && this.hosts.some((h) => h.ip === r['ip-address'] && h.subnetId === r['subnet-id']))
        ) {
          return {
            result: 1,
            text: 'Database duplicate entry error: statement: insert_host_non_unique_ip, reason: ERROR:  duplicate key value violates unique constraint "key_dhcp4_identifier_subnet_id"',
          };
        }
        this.hosts.push(this.fromReservation(r));
        return { result: 0, text: 'Host added.' };
      }
      case 'reservation-update': {
        const r = a.reservation as Record<string, unknown>;
        const i = find(r['subnet-id'], r['hw-address']);
        // Not a text measured from Kea: the writer only updates a host it has just read.
        if (i < 0) return { result: 1, text: 'no such host' };
        this.hosts[i] = this.fromReservation(r);
        return { result: 0, text: 'Host updated.' };
      }
      case 'reservation-del': {
        const i = find(a['subnet-id'], a.identifier);
        if (i < 0) return { result: 3, text: 'Host not deleted (not found).' };
        this.hosts.splice(i, 1);
        return { result: 0, text: 'Host deleted.' };
      }
      default:
        return { result: 2, text: `'${command}' command not supported.` };
    }
  }

  private fromReservation(r: Record<string, unknown>): FakeHost {
    return {
      subnetId: r['subnet-id'] as number,
      mac: r['hw-address'] as string,
      ip: r['ip-address'] as string,
      hostname: (r.hostname as string | undefined) ?? '',
      userContext: r['user-context'] as Record<string, unknown> | undefined,
    };
  }
}
