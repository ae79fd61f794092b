import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyDbError } from '../src/db/errors';

describe('SQLSTATE classes: only configuration is fatal', () => {
  test('each documented code lands in its class', () => {
    const cases: [unknown, string][] = [
      [{ code: '42501' }, 'fatal'],
      [{ code: '42P01' }, 'fatal'],
      [{ code: '42703' }, 'fatal'],
      [{ code: '3D000' }, 'fatal'],
      [{ code: '28P01' }, 'fatal'],
      [{ code: '28000' }, 'fatal'],
      [{ code: '25006' }, 'read-only'],
      [{ code: '57P03' }, 'transient'],
      [{ code: '57P01' }, 'transient'],
      [{ code: '57014' }, 'transient'],
      [{ code: '55P03' }, 'transient'],
      [{ code: '08006' }, 'transient'],
      [{ code: '40001' }, 'transient'],
      [{ code: '53300' }, 'transient'],
      [{ code: 'XX000' }, 'transient'],
      [{ code: 'ECONNREFUSED' }, 'transient'],
      [{ code: 'ENOTFOUND' }, 'transient'],
      // Node's socket errors of five letters are not SQLSTATEs (they would read as class "EP", config).
      [{ code: 'EPIPE', errno: -32, syscall: 'write' }, 'transient'],
      [{ code: 'EPERM', errno: -1, syscall: 'connect' }, 'transient'],
      [{ code: 'EBADF' }, 'transient'],
      [new Error('Query read timeout'), 'transient'],
      [null, 'transient'],
      [{ code: '23505' }, 'data'],
      [{ code: '22001' }, 'data'],
      [{ code: '42P10' }, 'config'],
      [{ code: '42601' }, 'config'],
      [Object.assign(new Error('cached plan must not change result type'), { code: '0A000' }), 'transient'],
      [Object.assign(new Error('unsupported'), { code: '0A000' }), 'config'],
    ];
    for (const [err, want] of cases) assert.equal(classifyDbError(err), want, JSON.stringify(err));
  });
});
