-- The artifact reader validates before it trusts: every single-byte change
-- and every truncation of a valid artifact is rejected with XX001.
-- A schema for this file (tests share one database).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_artifact CASCADE;
CREATE SCHEMA t_artifact;
SET search_path = t_artifact, public;
RESET client_min_messages;
SET mlpipe.progress = off;
CREATE TABLE pts AS SELECT i AS id, (i % 7)::float8 AS x, (i % 3)::float8 AS y
  FROM generate_series(1, 30) i;
SELECT version FROM mlpipe.train('a', 'kmeans', 'pts', features => '{x,y}', params => '{"k": 3, "standardize": true}');

CREATE FUNCTION rejected(blob bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mlpipe.predict(blob, ARRAY[1.0, 2.0]);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- The stored artifact scores.
SELECT rejected(mlpipe.artifact('a')) AS intact;

-- Flip each byte two ways (low bit, all bits), and truncate at every length.
WITH a AS (SELECT mlpipe.artifact('a') AS blob),
     flips AS (
        SELECT rejected(set_byte(blob, i, get_byte(blob, i) # m)) AS outcome
          FROM a, generate_series(0, length(blob) - 1) i, (VALUES (1), (255)) f(m)
        UNION ALL
        SELECT rejected(substring(blob FROM 1 FOR n))
          FROM a, generate_series(0, length(blob) - 1) n)
SELECT outcome, count(*) > 0 AS seen FROM flips GROUP BY outcome ORDER BY outcome;

-- Garbage and a wrong magic.
SELECT rejected('\x00'::bytea), rejected('MLPX'::bytea), rejected(decode(repeat('ff', 64), 'hex'));
SELECT mlpipe.export('\xdeadbeef'::bytea);
