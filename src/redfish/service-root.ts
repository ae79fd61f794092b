/**
 * What a device's Redfish service root says, and what of it the monitor keeps. Everything here comes
 * from the device, so it is untrusted: strings get the hostname rules (no control characters, valid
 * UTF-8, trimmed) and a tighter length bound; the version and UUID must have their formats or are
 * dropped. Pure functions; the probe (probe.ts) and the record reader (discovery.ts) share them.
 */
import { sanitizeHostname } from '../lease';

export type RedfishStatus = 'present' | 'absent' | 'unreachable';

/** The `redfish` field of a discovery record. */
export interface RedfishInfo {
  status: RedfishStatus;
  version: string | null;
  uuid: string | null;
  vendor: string | null;
  product: string | null;
  /** When the probe that decided `status` ended, ISO 8601. */
  probed_at: string;
}

export type ServiceRoot = Omit<RedfishInfo, 'status' | 'probed_at'>;

export type RootVerdict = { redfish: true; root: ServiceRoot } | { redfish: false; why: string };

/** Vendor and product names are short in practice ("Contoso", "iDRAC 9"); more is noise or an attack. */
export const MAX_TEXT_BYTES = 128;
const VERSION = /^\d{1,4}\.\d{1,4}\.\d{1,4}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATUSES: ReadonlySet<string> = new Set<RedfishStatus>(['present', 'absent', 'unreachable']);

/** A device string as a hostname is cleaned, then cut to MAX_TEXT_BYTES without splitting a character. */
export function deviceText(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const clean = sanitizeHostname(value);
  if (clean === null || Buffer.byteLength(clean, 'utf8') <= MAX_TEXT_BYTES) return clean;
  let bytes = 0;
  let cut = 0;
  for (const ch of clean) {
    bytes += Buffer.byteLength(ch, 'utf8');
    if (bytes > MAX_TEXT_BYTES) break;
    cut += ch.length;
  }
  return clean.slice(0, cut).trim() || null;
}

export function redfishVersion(value: unknown): string | null {
  return typeof value === 'string' && VERSION.test(value) ? value : null;
}

export function serviceUuid(value: unknown): string | null {
  return typeof value === 'string' && UUID.test(value) ? value.toLowerCase() : null;
}

/**
 * A body is a Redfish service root when it is a JSON object that says so: `@odata.id` of the root,
 * a `RedfishVersion`, or an `@odata.type` of ServiceRoot. Anything else (HTML, a JSON array, a
 * login page's JSON) is an HTTP server that is not Redfish.
 */
export function parseServiceRoot(body: Buffer): RootVerdict {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: false }).decode(body));
  } catch {
    return { redfish: false, why: 'the answer is not JSON' };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { redfish: false, why: 'the answer is not a JSON object' };
  const o = doc as Record<string, unknown>;
  const id = o['@odata.id'];
  const type = o['@odata.type'];
  const looksLikeRoot =
    id === '/redfish/v1/' ||
    id === '/redfish/v1' ||
    typeof o.RedfishVersion === 'string' ||
    (typeof type === 'string' && type.startsWith('#ServiceRoot.'));
  if (!looksLikeRoot) return { redfish: false, why: 'the JSON object is not a Redfish service root' };
  return {
    redfish: true,
    root: {
      version: redfishVersion(o.RedfishVersion),
      uuid: serviceUuid(o.UUID),
      vendor: deviceText(o.Vendor),
      product: deviceText(o.Product),
    },
  };
}

/** The `redfish` field of a record read back from disk, checked again; null when it is not one. */
export function redfishFromRecord(value: unknown): RedfishInfo | null {
  if (value === null || typeof value !== 'object') return null;
  const o = value as Record<string, unknown>;
  if (typeof o.status !== 'string' || !STATUSES.has(o.status)) return null;
  if (typeof o.probed_at !== 'string' || Number.isNaN(Date.parse(o.probed_at))) return null;
  return {
    status: o.status as RedfishStatus,
    version: redfishVersion(o.version),
    uuid: serviceUuid(o.uuid),
    vendor: deviceText(o.vendor),
    product: deviceText(o.product),
    probed_at: new Date(o.probed_at).toISOString(),
  };
}
