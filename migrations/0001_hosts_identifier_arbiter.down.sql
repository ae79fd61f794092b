-- Drops only the constraint 0001 may have created; Kea's own index is never touched.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint
              WHERE conrelid = 'hosts'::regclass AND conname = 'hosts_dhcp_identifier_subnet_unique') THEN
    ALTER TABLE hosts DROP CONSTRAINT hosts_dhcp_identifier_subnet_unique;
  END IF;
END
$$;
