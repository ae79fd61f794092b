-- An arbiter for INSERT ... ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id).
-- Kea's schema already has one (the partial unique index key_dhcp4_identifier_subnet_id); adding a
-- constraint beside it would only duplicate it. So the constraint is created only where no unique
-- index on exactly these three columns exists (very old or hand-altered schemas).
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1
    FROM pg_index i
    WHERE i.indrelid = 'hosts'::regclass
      AND i.indisunique AND i.indisvalid
      AND i.indexprs IS NULL
      AND i.indnkeyatts = 3
      AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
             FROM pg_attribute a
            WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]))
          = ARRAY['dhcp4_subnet_id', 'dhcp_identifier', 'dhcp_identifier_type']
  ) THEN
    ALTER TABLE hosts
      ADD CONSTRAINT hosts_dhcp_identifier_subnet_unique
      UNIQUE (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id);
  END IF;
END
$$;
