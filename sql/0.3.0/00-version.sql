-- mlpipe 0.2.0 -> 0.3.0: features, preprocessing, evaluation, MLOps.
-- Built from the fragments in sql/0.3.0/, applied in name order.
\echo Use "ALTER EXTENSION mlpipe UPDATE TO '0.3.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '0.3.0'::text $$;
