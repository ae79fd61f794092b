import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { CSV_HEADER } from './helpers/leases';
import { tempDir } from './helpers/monitor';
import { waitFor } from './helpers/wait';

const ROOT = join(__dirname, '..');
const RULES = join(ROOT, 'alerts', 'kea-lease-monitor.rules.yml');
const RULE_TESTS = join(ROOT, 'alerts', 'kea-lease-monitor.rules.test.yml');
const DASHBOARD = join(ROOT, 'dashboards', 'kea-lease-monitor.json');
const BIN = join(ROOT, 'dist', 'kea-lease-monitor');
const RUNBOOK_URL = 'https://example.invalid/kea-lease-monitor/blob/main/docs/runbook.md';

function promtool(...args: string[]) {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  assert.ok(!r.error, `promtool (Debian package prometheus; make setup installs it): ${String(r.error)}`);
  return r;
}

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

function dashboardExprs(): { title: string; expr: string }[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { query?: unknown }[] } };
  const out = d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
  for (const v of d.templating.list) {
    const q = v.query as { query?: string } | undefined;
    const m = /^label_values\((\w+)[,{]/.exec(q?.query ?? '');
    if (m) out.push({ title: 'variable', expr: m[1] });
  }
  return out;
}

function ruleExprs(): string[] {
  // The rules file is YAML; its expressions are the `expr:` scalars, plain or block (|) style.
  const exprs: string[] = [];
  const lines = readFileSync(RULES, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]);
    if (!m) continue;
    if (m[2] !== '|') {
      exprs.push(m[2]);
      continue;
    }
    const block: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > m[1].length)) block.push(lines[++i]);
    exprs.push(block.join('\n'));
  }
  return exprs;
}

function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(kea_lease_monitor_\w+|process_\w+|nodejs_\w+)\b/g)].map((m) => m[1]);
}

test('promtool check rules: the alerting rules are valid', () => {
  const r = promtool('check', 'rules', RULES);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: 10 rules found/);
});

test('every alert links a runbook section of docs/runbook.md that exists', () => {
  const runbook = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');
  const anchors = new Set([...runbook.matchAll(/^## (\S+)$/gm)].map((m) => m[1].toLowerCase()));
  const rules = readFileSync(RULES, 'utf8')
    .split(/\n(?= {6}- alert: )/)
    .slice(1);
  assert.equal(rules.length, 10);
  for (const rule of rules) {
    const name = /- alert: (\w+)/.exec(rule)![1];
    const url = /runbook_url: (\S+)/.exec(rule)?.[1];
    assert.ok(url, `${name} has a runbook_url`);
    assert.equal(url, `${RUNBOOK_URL}#${name.toLowerCase()}`, `${name}'s runbook_url`);
    assert.ok(anchors.has(name.toLowerCase()), `docs/runbook.md has a section ## ${name}`);
  }
});

test('every alert unit test checks label values beyond severity', () => {
  // An expected alert that names only its severity would pass whatever series fired it.
  const expected = [...readFileSync(RULE_TESTS, 'utf8').matchAll(/exp_labels: \{([^}]*)\}/g)].map((m) => m[1]);
  assert.ok(expected.length >= 9);
  for (const labels of expected) {
    const keys = labels.split(',').map((kv) => kv.split(':')[0].trim());
    assert.ok(keys.includes('severity') && keys.length >= 2, `exp_labels {${labels}} names the labels that identify the alert`);
  }
});

test('promtool test rules: every alert has unit tests, and they pass', () => {
  const r = promtool('test', 'rules', RULE_TESTS);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const alerts = [...readFileSync(RULES, 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  const tested = new Set([...readFileSync(RULE_TESTS, 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
  for (const a of alerts) assert.ok(tested.has(a), `${a} has a unit test`);
});

test('the dashboard has a job variable and panels for up, the record backlog, Kea API commands and listener reconnects', () => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating: { list: { name: string }[] } };
  assert.ok(
    d.templating.list.some((v) => v.name === 'job'),
    'a job variable',
  );
  const exprs = dashboardExprs().filter((e) => e.title !== 'variable');
  for (const [metric, what] of [
    ['up', 'scrape health'],
    ['kea_lease_monitor_discovery_backlog', 'record backlog'],
    ['kea_lease_monitor_kea_api_commands_total', 'Kea API commands'],
    ['kea_lease_monitor_listener_reconnects_total', 'listener reconnects'],
  ]) {
    assert.ok(
      exprs.some((e) => new RegExp(`\\b${metric}\\{`).test(e.expr)),
      `a panel for ${what} (${metric})`,
    );
  }
  for (const e of exprs) assert.match(e.expr, /job=~"\$job"/, `panel ${e.title} filters on $job`);
});

test('every dashboard query is valid PromQL', () => {
  // promtool parses expressions in rule files: check the dashboard's as recording rules.
  const rules = dashboardExprs().map(({ expr }, i) => {
    const plain = expr.replace(/\$__rate_interval|\$__range/g, '5m').replace(/\$instance|\$job/g, '.*');
    return `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(plain)}`;
  });
  const file = join(tempDir('klm-dash-'), 'dashboard.rules.yml');
  writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
  const r = promtool('check', 'rules', file);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('every metric the dashboard and the rules use is one the built binary exports', async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  const dir = tempDir('klm-scrape-');
  const leaseFile = join(dir, 'kea-leases4.csv');
  writeFileSync(leaseFile, CSV_HEADER + '\n');
  const port = await freePort();
  const child = spawn(
    BIN,
    [
      '--lease-file',
      leaseFile,
      '--output-dir',
      join(dir, 'out'),
      '--db-host',
      '127.0.0.1',
      '--db-port',
      '1',
      '--metrics-port',
      String(port),
    ],
    { cwd: dir, env: { PATH: '/usr/bin:/bin' }, stdio: 'ignore' },
  );
  let text: string;
  try {
    text = await waitFor('/metrics', () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()), 15_000);
  } finally {
    child.kill('SIGTERM');
  }
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  const exported = (name: string): boolean => {
    if (types.has(name)) return true;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return base !== name && types.get(base) === 'histogram';
  };
  const used = new Set([...dashboardExprs().flatMap((e) => metricNames(e.expr)), ...ruleExprs().flatMap(metricNames)]);
  assert.ok(used.size > 15, `found the metric names in use (${used.size})`);
  for (const name of used) assert.ok(exported(name), `${name} is used by the dashboard or the rules but not exported`);
  // A matcher on a label value (reason="limit") must name a value the binary exports: every enumerated
  // label value is present, at 0, from the start.
  for (const expr of [...ruleExprs(), ...dashboardExprs().map((e) => e.expr)]) {
    for (const m of expr.matchAll(/\b(kea_lease_monitor_\w+)\{([^}]*)\}/g)) {
      for (const mm of m[2].matchAll(/(\w+)="([^"$]+)"/g)) {
        if (mm[1] === 'job' || mm[1] === 'instance') continue;
        const series = new RegExp(`^${m[1]}\\{[^}]*\\b${mm[1]}="${mm[2]}"`, 'm');
        assert.match(text, series, `${m[1]}{${mm[1]}="${mm[2]}"} is used but the binary exports no such series`);
      }
    }
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
