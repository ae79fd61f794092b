import { main } from './cli';

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`kea-lease-monitor: ${String(err)}\n`);
    process.exit(1);
  },
);
