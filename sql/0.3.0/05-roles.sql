-- Roles, least privilege first. Each role includes the one before it:
--   mlpipe_reader  : read the registry tables and prediction tables, model_info, export, ...
--   mlpipe_scorer  : + predict / predict_label / predict_proba by name
--   mlpipe_trainer : + train, evaluate, cross_validate, search, predict_table, drift
--   mlpipe_admin   : + promote, rollback, prune, tags, pipelines, schedules
-- Roles are cluster-wide, so they are created only when missing and are not
-- dropped with the extension. Every fragment that adds a function revokes it
-- from PUBLIC and grants it to the lowest role that may call it; pure
-- computations (aggregates, metrics on caller data) stay PUBLIC.
DO $$
DECLARE r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['mlpipe_reader', 'mlpipe_scorer', 'mlpipe_trainer', 'mlpipe_admin'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END $$;
GRANT mlpipe_reader TO mlpipe_scorer;
GRANT mlpipe_scorer TO mlpipe_trainer;
GRANT mlpipe_trainer TO mlpipe_admin;
GRANT USAGE ON SCHEMA mlpipe TO mlpipe_reader;
