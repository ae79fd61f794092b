// The floor's one statement (bench/lib/floor.ts): every notification taken in one wake, upserted into hosts with
// nothing checked. $1 MACs as hex, $2 subnet ids, $3 addresses, $4 hostnames, $5 the user_context mark.
export const FLOOR_UPSERT = `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
  SELECT decode(m, 'hex'), 0, s, a, h, $5 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS t(m, s, a, h)
  ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id) WHERE dhcp4_subnet_id IS NOT NULL
  DO UPDATE SET ipv4_address = EXCLUDED.ipv4_address, hostname = EXCLUDED.hostname`;
