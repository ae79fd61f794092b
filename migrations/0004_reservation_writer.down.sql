-- Removes the reservation write functions (nothing else depends on them).
DROP FUNCTION IF EXISTS kea_lm_write_reservations(text, boolean, int, int, int, bigint, bytea[], bigint[], bigint[], bytea[], int[], boolean[], int, bytea, bytea);
DROP FUNCTION IF EXISTS kea_lm_fence_held(int, int, int, bigint);
DROP FUNCTION IF EXISTS kea_lm_owned(text);
DROP FUNCTION IF EXISTS kea_lm_owned_cast(text);
