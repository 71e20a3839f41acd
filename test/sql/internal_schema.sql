-- Issue #12: the internal functions and aggregates (names starting with _)
-- live in schema mlpipe_internal, out of the user's way; tables and types
-- stay in mlpipe. Security is as before: EXECUTE as granted per function,
-- only mlpipe's roles may look names up in mlpipe_internal.

-- \df mlpipe.* lists no internal function ...
\df mlpipe._*
SELECT p.oid::regprocedure AS internal_in_mlpipe FROM pg_proc p
 WHERE p.pronamespace = 'mlpipe'::regnamespace AND p.proname ~ '^_' ORDER BY 1::text;
-- ... and mlpipe_internal holds nothing else, and no table or type.
SELECT p.oid::regprocedure AS public_in_internal FROM pg_proc p
 WHERE p.pronamespace = 'mlpipe_internal'::regnamespace AND p.proname !~ '^_' ORDER BY 1::text;
SELECT count(*) > 100 AS many_internal_functions, count(*) FILTER (WHERE p.prokind = 'a') AS aggregates
  FROM pg_proc p WHERE p.pronamespace = 'mlpipe_internal'::regnamespace;
SELECT c.oid::regclass AS relation_in_internal FROM pg_class c
 WHERE c.relnamespace = 'mlpipe_internal'::regnamespace;
SELECT t.oid::regtype AS type_in_internal FROM pg_type t
 WHERE t.typnamespace = 'mlpipe_internal'::regnamespace;

-- The schema belongs to the extension; who may look names up in it.
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member
  FROM pg_depend d JOIN pg_namespace n ON d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mlpipe') AND d.deptype = 'e'
 ORDER BY 1;
SELECT r AS role, has_schema_privilege(r, 'mlpipe_internal', 'USAGE') AS usage,
       has_schema_privilege(r, 'mlpipe_internal', 'CREATE') AS create
  FROM unnest(ARRAY['public', 'mlpipe_reader', 'mlpipe_scorer', 'mlpipe_trainer', 'mlpipe_admin']) r;

-- Every internal function pins its search_path or is C or an aggregate,
-- as in schema mlpipe (search_path_pins checks the details).
SELECT p.oid::regprocedure AS secdef_unpinned FROM pg_proc p
 WHERE p.pronamespace = 'mlpipe_internal'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);

-- A role without mlpipe roles can still use the PUBLIC aggregates, whose
-- support functions live in mlpipe_internal (no name lookup at run time),
-- but cannot look up internal names.
CREATE ROLE t_internal_nobody NOLOGIN;
SET ROLE t_internal_nobody;
SELECT mlpipe.accuracy(y, p) AS accuracy, mlpipe.rmse(a, b) AS rmse
  FROM (VALUES ('a', 'a', 1.0, 1.0), ('b', 'a', 2.0, 4.0)) v(y, p, a, b);
SELECT mlpipe_internal._bin_of(0.5, ARRAY[0.0, 1.0]);
RESET ROLE;
-- A trainer trains through the internal functions it calls as itself.
CREATE TABLE t_internal_pts AS SELECT i, (i % 7)::float8 AS x, (i % 3)::float8 AS y FROM generate_series(1, 60) i;
CREATE ROLE t_internal_trainer NOLOGIN IN ROLE mlpipe_trainer;
GRANT SELECT ON t_internal_pts TO t_internal_trainer;
SET ROLE t_internal_trainer;
SELECT version FROM mlpipe.train('t_internal_km', 'kmeans', 'public.t_internal_pts', NULL, '{x,y}', '{"k": 2, "seed": 1}');
SELECT mlpipe.predict('t_internal_km', ARRAY[1.0, 1.0]) >= 0 AS scores;
RESET ROLE;
SELECT mlpipe.drop_model('t_internal_km') IS NOT NULL AS dropped;
DROP TABLE t_internal_pts;
DROP ROLE t_internal_trainer;
DROP ROLE t_internal_nobody;
