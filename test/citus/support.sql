-- support.sql: attaches the prototype "scoring by name anywhere"
-- (src/pg/predict_support.c, issue #11) to an installed mlpipe. To be moved
-- into the sql/ tree (the next upgrade script) once the restructuring lands;
-- until then the Citus suite applies it by hand on the coordinator.
--
-- The support function replaces a constant model reference in the name
-- forms by the artifact form with the artifact as a constant, at plan time.
-- The planner hook of the same file (predict_support_init() in _PG_init,
-- with mlpipe preloaded on the coordinator) does the same before Citus
-- plans, so that the shard queries carry the artifact.

CREATE OR REPLACE FUNCTION mlpipe._predict_support(internal) RETURNS internal
AS '$libdir/mlpipe', 'mlpipe_predict_support' LANGUAGE C STRICT;

ALTER FUNCTION mlpipe.predict(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_class(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_label(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_proba(text, float8[]) SUPPORT mlpipe._predict_support;

-- A plan that embedded an artifact lists model_versions and aliases among
-- its relations; a change to either replans it (relcache invalidation).
CREATE OR REPLACE FUNCTION mlpipe._registry_changed() RETURNS trigger
AS '$libdir/mlpipe', 'mlpipe_registry_changed' LANGUAGE C;

DROP TRIGGER IF EXISTS _registry_changed ON mlpipe.aliases;
CREATE TRIGGER _registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON mlpipe.aliases FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._registry_changed();
DROP TRIGGER IF EXISTS _registry_changed ON mlpipe.model_versions;
CREATE TRIGGER _registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON mlpipe.model_versions FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._registry_changed();
