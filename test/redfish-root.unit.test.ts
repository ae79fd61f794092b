// The service root as the device sends it is untrusted: what is recognised as Redfish, and what of
// it reaches a discovery record (fast-check for hostile strings).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { deviceText, MAX_TEXT_BYTES, parseServiceRoot, redfishFromRecord, serviceUuid } from '../src/redfish/service-root';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

describe('Redfish service root', () => {
  test('a service root gives its version, UUID, vendor and product', () => {
    const v = parseServiceRoot(
      json({
        '@odata.id': '/redfish/v1/',
        '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
        RedfishVersion: '1.15.0',
        UUID: '92384634-2938-2342-8820-489239905423',
        Vendor: 'Contoso',
        Product: 'Contoso BMC 2',
      }),
    );
    assert.deepEqual(v, {
      redfish: true,
      root: { version: '1.15.0', uuid: '92384634-2938-2342-8820-489239905423', vendor: 'Contoso', product: 'Contoso BMC 2' },
    });
  });

  test('each of @odata.id, RedfishVersion or a ServiceRoot @odata.type is enough; the optional fields may be missing', () => {
    for (const doc of [{ '@odata.id': '/redfish/v1' }, { RedfishVersion: '1.0.0' }, { '@odata.type': '#ServiceRoot.v1_0_0.ServiceRoot' }]) {
      const v = parseServiceRoot(json(doc));
      assert.equal(v.redfish, true, JSON.stringify(doc));
    }
    assert.deepEqual(parseServiceRoot(json({ RedfishVersion: '1.0.0' })), {
      redfish: true,
      root: { version: '1.0.0', uuid: null, vendor: null, product: null },
    });
  });

  test('HTML, invalid JSON, arrays and other JSON objects are not Redfish', () => {
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from('<html><body>Login</body></html>'), /not JSON/],
      [Buffer.from('{"RedfishVersion": "1.0.0"'), /not JSON/],
      [json([{ RedfishVersion: '1.0.0' }]), /not a JSON object/],
      [json(null), /not a JSON object/],
      [json({ '@odata.id': '/redfish/v1/Systems', Name: 'x' }), /not a Redfish service root/],
      [json({ status: 'ok' }), /not a Redfish service root/],
    ];
    for (const [body, why] of cases) {
      const v = parseServiceRoot(body);
      assert.equal(v.redfish, false, body.toString());
      assert.match(v.redfish ? '' : v.why, why);
    }
  });

  test('a version or UUID in the wrong format or type is dropped, not kept', () => {
    const v = parseServiceRoot(json({ RedfishVersion: '1.0.0; rm -rf /', UUID: 'not-a-uuid', Vendor: 42, Product: { a: 1 } }));
    assert.deepEqual(v, { redfish: true, root: { version: null, uuid: null, vendor: null, product: null } });
    assert.equal(serviceUuid('92384634-2938-2342-8820-48923990542G'), null);
    assert.equal(serviceUuid('ABCDEF01-2938-2342-8820-489239905423'), 'abcdef01-2938-2342-8820-489239905423');
  });

  test('a hostile vendor: control characters stripped, cut to the byte bound without splitting a character', () => {
    assert.equal(deviceText('Evil\u0000\u001b[31mCorp\r\n\u2028'), 'Evil[31mCorp');
    const long = deviceText('é'.repeat(500)) as string;
    assert.ok(Buffer.byteLength(long) <= MAX_TEXT_BYTES);
    assert.equal(long, 'é'.repeat(64));
    assert.equal(deviceText('\u0001\u0002 '), null);
  });

  test('fast-check: any string becomes clean, bounded, well-formed text or null', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 600 }), fc.string({ unit: 'grapheme', maxLength: 300 })), (s) => {
        const t = deviceText(s);
        if (t === null) return;
        assert.ok(!CONTROL.test(t), JSON.stringify(t));
        assert.ok(Buffer.byteLength(t, 'utf8') <= MAX_TEXT_BYTES);
        assert.ok(t.isWellFormed());
        assert.equal(t, t.trim());
        assert.ok(t.length > 0);
      }),
      { numRuns: 2000 },
    );
  });

  test('fast-check: any body is classified without throwing, and a kept vendor or product is clean', () => {
    const field = fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.jsonValue({ maxDepth: 2 }));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
          fc.record({ RedfishVersion: field, UUID: field, Vendor: field, Product: field }, { requiredKeys: [] }).map(json),
          fc.jsonValue().map(json),
        ),
        (body) => {
          const v = parseServiceRoot(body);
          if (!v.redfish) return;
          for (const t of [v.root.vendor, v.root.product]) {
            if (t === null) continue;
            assert.ok(!CONTROL.test(t) && Buffer.byteLength(t) <= MAX_TEXT_BYTES && t.isWellFormed());
          }
          assert.ok(v.root.uuid === null || /^[0-9a-f-]{36}$/.test(v.root.uuid));
          assert.ok(v.root.version === null || /^\d+\.\d+\.\d+$/.test(v.root.version));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('a record read back is checked again: a tampered field is dropped or the whole field refused', () => {
    const ok = {
      status: 'present',
      version: '1.2.3',
      uuid: null,
      vendor: 'A\u0007B',
      product: null,
      probed_at: '2026-01-01T00:00:00.000Z',
    };
    assert.deepEqual(redfishFromRecord(ok), { ...ok, vendor: 'AB' });
    assert.equal(redfishFromRecord({ ...ok, status: 'maybe' }), null);
    assert.equal(redfishFromRecord({ ...ok, probed_at: 'yesterday' }), null);
    assert.equal(redfishFromRecord('present'), null);
  });
});
