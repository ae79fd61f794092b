-- Removes the reservation write function (nothing else depends on it).
DROP FUNCTION IF EXISTS kea_lm_write_reservations(text, boolean, int, int, int, bigint, bytea[], bigint[], bigint[], bytea[], int[], boolean[], int, bytea, bytea);
