-- Every way to reach the current version ends in the same catalog: a fresh
-- CREATE EXTENSION (the full script built from sql/src) and CREATE EXTENSION
-- VERSION '0.1.0' / '0.2.0' / '0.3.0' followed by ALTER EXTENSION UPDATE
-- (the released scripts). t_catalog.snapshot() prints what the catalog
-- holds for the extension as one text line per fact; any line that one path
-- has and the fresh install has not (or the reverse) is printed below, so
-- a difference fails the test and shows itself.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_catalog CASCADE;
CREATE SCHEMA t_catalog;
RESET client_min_messages;

-- One line per fact: kind, object, details. Function bodies are compared by
-- md5 to keep lines short; the object name says which one differs.
CREATE FUNCTION t_catalog.snapshot() RETURNS SETOF text LANGUAGE sql STABLE AS $$
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'mlpipe'),
ns AS (SELECT n.oid FROM pg_namespace n WHERE n.nspname IN ('mlpipe', 'mlpipe_internal'))
-- Every object that belongs to the extension.
SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
   AND d.deptype = 'e'
UNION ALL
SELECT 'extension ' || e.extversion || ' relocatable=' || e.extrelocatable
       || ' config=' || coalesce(e.extconfig::regclass[]::text, '') || ' conditions='
       || coalesce(e.extcondition::text, '')
  FROM pg_extension e WHERE e.extname = 'mlpipe'
UNION ALL
SELECT 'schema ' || n.nspname || ' owner=' || n.nspowner::regrole || ' acl=' || coalesce(n.nspacl::text, '')
       || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '')
  FROM pg_namespace n, ns WHERE n.oid = ns.oid
UNION ALL
-- Functions, procedures and aggregates: signature, result and every property.
SELECT 'function ' || p.oid::regprocedure || ' (' || pg_get_function_arguments(p.oid) || ')'
       || ' returns ' || coalesce(pg_get_function_result(p.oid), '-')
       || ' kind=' || p.prokind::text || ' lang=' || l.lanname
       || ' volatile=' || p.provolatile::text || ' strict=' || p.proisstrict
       || ' parallel=' || p.proparallel::text || ' secdef=' || p.prosecdef
       || ' leakproof=' || p.proleakproof || ' cost=' || p.procost || ' rows=' || p.prorows
       || ' retset=' || p.proretset || ' owner=' || p.proowner::regrole
       || ' config=' || coalesce(p.proconfig::text, '')
       || ' bin=' || coalesce(p.probin, '') || ' src=' || md5(p.prosrc)
       || ' acl=' || coalesce(p.proacl::text, '')
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang, ns WHERE p.pronamespace = ns.oid
UNION ALL
SELECT 'comment ' || p.oid::regprocedure || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '(none)')
  FROM pg_proc p, ns WHERE p.pronamespace = ns.oid
UNION ALL
SELECT 'aggregate ' || a.aggfnoid::regprocedure || ' kind=' || a.aggkind::text
       || ' sfunc=' || a.aggtransfn::regprocedure || ' final=' || a.aggfinalfn
       || ' combine=' || a.aggcombinefn || ' serial=' || a.aggserialfn
       || ' deserial=' || a.aggdeserialfn || ' finalextra=' || a.aggfinalextra
       || ' finalmodify=' || a.aggfinalmodify::text || ' stype=' || a.aggtranstype::regtype
       || ' sspace=' || a.aggtransspace || ' init=' || coalesce(a.agginitval, '(null)')
       || ' sortop=' || a.aggsortop || ' msfunc=' || a.aggmtransfn
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid, ns WHERE p.pronamespace = ns.oid
UNION ALL
-- Tables, views, sequences, indexes and composite types.
SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
       || ' owner=' || c.relowner::regrole || ' options=' || coalesce(c.reloptions::text, '')
       || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
       || ' acl=' || coalesce(c.relacl::text, '')
       || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '(none)')
  FROM pg_class c, ns WHERE c.relnamespace = ns.oid
UNION ALL
SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' #' || a.attnum
       || ' type=' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
       || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')
       || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
       || ' storage=' || a.attstorage::text || ' collation=' || a.attcollation
       || ' acl=' || coalesce(a.attacl::text, '')
       || ' comment=' || coalesce(col_description(c.oid, a.attnum), '(none)')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum, ns
 WHERE c.relnamespace = ns.oid AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
       || ' deferrable=' || co.condeferrable || ' validated=' || co.convalidated
  FROM pg_constraint co, ns WHERE co.connamespace = ns.oid
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid, ns WHERE c.relnamespace = ns.oid
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, ns
 WHERE c.relnamespace = ns.oid AND NOT t.tgisinternal
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid)
  FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'sequence ' || s.seqrelid::regclass || ' ' || s.seqtypid::regtype || ' ' || s.seqstart
       || ' ' || s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid, ns WHERE c.relnamespace = ns.oid
UNION ALL
SELECT 'policy ' || pol.polrelid::regclass || ' ' || pol.polname || ' ' || pol.polcmd::text || ' '
       || pol.polpermissive || ' ' || pol.polroles::regrole[]::text || ' '
       || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' '
       || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '')
  FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid, ns WHERE c.relnamespace = ns.oid
UNION ALL
SELECT 'type ' || t.oid::regtype || ' type=' || t.typtype::text || ' owner=' || t.typowner::regrole
       || ' acl=' || coalesce(t.typacl::text, '')
       || ' comment=' || coalesce(obj_description(t.oid, 'pg_type'), '(none)')
  FROM pg_type t, ns WHERE t.typnamespace = ns.oid
UNION ALL
SELECT 'role ' || r.rolname || ' login=' || r.rolcanlogin || ' inherit=' || r.rolinherit
       || ' member of=' || coalesce((SELECT string_agg(m.roleid::regrole::text, ',' ORDER BY 1)
                                       FROM pg_auth_members m WHERE m.member = r.oid), '')
  FROM pg_roles r WHERE r.rolname LIKE 'mlpipe\_%'
UNION ALL
SELECT 'default acl ' || d.defaclobjtype::text || ' ' || d.defaclacl::text
  FROM pg_default_acl d, ns WHERE d.defaclnamespace = ns.oid
$$;

CREATE TABLE t_catalog.facts (path text, fact text);

-- The fresh install of the default version.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
CREATE EXTENSION mlpipe;
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'mlpipe';
INSERT INTO t_catalog.facts SELECT 'fresh', f FROM t_catalog.snapshot() f;

-- Each released version, then ALTER EXTENSION UPDATE.
CREATE FUNCTION t_catalog.via(v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL client_min_messages = warning;
    DROP EXTENSION IF EXISTS mlpipe CASCADE;
    EXECUTE format('CREATE EXTENSION mlpipe VERSION %L', v);
    ALTER EXTENSION mlpipe UPDATE;
    INSERT INTO t_catalog.facts SELECT 'from ' || v, f FROM t_catalog.snapshot() f;
    RETURN (SELECT extversion FROM pg_extension WHERE extname = 'mlpipe');
END $$;
SELECT v AS installed, t_catalog.via(v) AS updated_to
  FROM unnest(ARRAY['0.1.0', '0.2.0', '0.3.0']) v;

-- The snapshot is not empty (the queries see the extension) ...
SELECT path, count(*) > 300 AS has_facts FROM t_catalog.facts GROUP BY 1 ORDER BY 1;
-- ... every function, aggregate, table and table column has a comment ...
SELECT fact FROM t_catalog.facts
 WHERE path = 'fresh' AND fact ~ '^comment mlpipe(_internal)?\.' AND fact ~ '\(none\)$' ORDER BY 1;
SELECT c.oid::regclass AS uncommented, a.attname
  FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'mlpipe'::regnamespace AND c.relkind = 'r'
   AND (obj_description(c.oid, 'pg_class') IS NULL OR col_description(c.oid, a.attnum) IS NULL)
 ORDER BY 1, 2;
-- ... and the differences: none.
SELECT p.path, '+' AS sign, f.fact FROM t_catalog.facts f JOIN (SELECT DISTINCT path FROM t_catalog.facts
                                                                 WHERE path <> 'fresh') p ON f.path = 'fresh'
 WHERE NOT EXISTS (SELECT 1 FROM t_catalog.facts g WHERE g.path = p.path AND g.fact = f.fact)
UNION ALL
SELECT g.path, '-', g.fact FROM t_catalog.facts g
 WHERE g.path <> 'fresh'
   AND NOT EXISTS (SELECT 1 FROM t_catalog.facts f WHERE f.path = 'fresh' AND f.fact = g.fact)
 ORDER BY 1, 3, 2;

-- Leave the database as the other tests expect it: a fresh install.
SET client_min_messages = warning;
DROP EXTENSION mlpipe CASCADE;
CREATE EXTENSION mlpipe;
DROP SCHEMA t_catalog CASCADE;
RESET client_min_messages;
