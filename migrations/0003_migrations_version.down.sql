-- Forget the migrations version (rollback leaves the schema as Kea made it).
DROP TABLE IF EXISTS kea_lm_schema;
