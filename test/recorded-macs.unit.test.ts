// The MACs a reconcile pass sends as "recorded": the record stems macFileStem writes, nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { macFileStem } from '../src/lease';
import { recordedMacs } from '../src/sources/catch-up';

test('recordedMacs: turns each stem back into its MAC and leaves out names of another shape', () => {
  const mac = Buffer.from([0x02, 0xaa, 0, 0, 0, 0x01]);
  const long = Buffer.alloc(20, 0xfe);
  const macs = recordedMacs(new Set([macFileStem(mac), macFileStem(long), '02-AA-00-00-00-01', '02-aa-0', 'x.tmp', '', '../02-aa']));
  assert.deepEqual(macs, [mac, long]);
  assert.deepEqual(recordedMacs(new Set([macFileStem(Buffer.alloc(21, 1))])), [], 'longer than lease4 allows (20 bytes)');
});
