-- Removes the functions the reservation write uses (0005's down drops the write first).
DROP FUNCTION IF EXISTS kea_lm_fence_held(int, int, int, bigint);
DROP FUNCTION IF EXISTS kea_lm_owned(text);
DROP FUNCTION IF EXISTS kea_lm_owned_cast(text);
