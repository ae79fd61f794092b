// The openssl arguments for a throwaway self-signed P-256 certificate, as most BMCs present one.
// Shared by the unit tests' HTTPS devices and the end-to-end Redfish mockups.

export interface SelfSignedRequest {
  cn: string;
  /** subjectAltName IP, when the certificate must name the device's address. */
  ip?: string;
  keyFile: string;
  certFile: string;
}

export function selfSignedArgs(r: SelfSignedRequest): string[] {
  return [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${r.cn}`,
    ...(r.ip === undefined ? [] : ['-addext', `subjectAltName=IP:${r.ip}`]),
    '-keyout',
    r.keyFile,
    '-out',
    r.certFile,
  ];
}
