// make man: docs/kea-lease-monitor.1 from the option tables (src/man.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderMan } from '../src/man';

const root = join(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
writeFileSync(join(root, 'docs', 'kea-lease-monitor.1'), renderMan(pkg.version));
