-- mlpipe 0.3.0 -> 0.4.0: comments on every object; search_path pinned and
-- calls qualified (issue #10); pg_cron for admins; the registry story, views
-- and drop_model (#12); the training profile in C and the reference cache
-- (#13); scoring by name on Citus (#11); explain and import (#14). Each
-- changed function appears once, in its 0.4.0 form, where it is first
-- needed. The full script sql/mlpipe--0.4.0.sql (built from sql/src/) and
-- this update give the same catalog (test/sql/upgrade_catalog.sql).
\echo Use "ALTER EXTENSION mlpipe UPDATE TO '0.4.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '0.4.0'::text $$;

-- sql/src/00-schema.sql
COMMENT ON COLUMN mlpipe.models.name IS 'The model name used in model references (no @, at most 200 characters).';
COMMENT ON COLUMN mlpipe.models.task IS 'clustering, classification or regression; every version of a model has this task.';
COMMENT ON COLUMN mlpipe.models.algorithm IS 'The algorithm of the first version.';
COMMENT ON COLUMN mlpipe.models.created_at IS 'When the first version was registered.';
COMMENT ON COLUMN mlpipe.models.created_by IS 'The user who registered the first version.';
COMMENT ON COLUMN mlpipe.models.tags IS 'Model tags (key to text value), set with mlpipe.tag.';
COMMENT ON COLUMN mlpipe.runs.run_id IS 'The run number, also in model_versions.run_id and metrics.run_id.';
COMMENT ON COLUMN mlpipe.runs.kind IS 'What ran: train, predict_table, evaluate, cross_validate, cv_fold, search, search_trial, pipeline, pipeline_step, ...';
COMMENT ON COLUMN mlpipe.runs.model IS 'The model the run trained, scored or evaluated, if any.';
COMMENT ON COLUMN mlpipe.runs.version IS 'The model version the run produced or used, if any.';
COMMENT ON COLUMN mlpipe.runs.algorithm IS 'The algorithm trained or cross-validated, if any.';
COMMENT ON COLUMN mlpipe.runs.source IS 'The table, view or query the run read.';
COMMENT ON COLUMN mlpipe.runs.params IS 'The parameters of the run as given (and what was derived from them).';
COMMENT ON COLUMN mlpipe.runs.status IS 'running, succeeded or failed.';
COMMENT ON COLUMN mlpipe.runs.error IS 'The error message of a failed run.';
COMMENT ON COLUMN mlpipe.runs.rows IS 'Rows read, scored or written.';
COMMENT ON COLUMN mlpipe.runs.started_at IS 'When the run started.';
COMMENT ON COLUMN mlpipe.runs.finished_at IS 'When the run finished (NULL while running).';
COMMENT ON COLUMN mlpipe.runs.seconds IS 'Duration of the run in seconds.';
COMMENT ON COLUMN mlpipe.runs.created_by IS 'The user who started the run.';
COMMENT ON COLUMN mlpipe.runs.parent_run_id IS 'The run this one is part of (a fold of a cross-validation, a step of a pipeline, ...).';
COMMENT ON COLUMN mlpipe.model_versions.model IS 'The model (mlpipe.models.name) this is a version of.';
COMMENT ON COLUMN mlpipe.model_versions.version IS 'The version number, 1, 2, ... per model.';
COMMENT ON COLUMN mlpipe.model_versions.algorithm IS 'kmeans, minibatch_kmeans, decision_tree, random_forest or gbt.';
COMMENT ON COLUMN mlpipe.model_versions.task IS 'clustering, classification or regression.';
COMMENT ON COLUMN mlpipe.model_versions.params IS 'The training parameters, defaults filled in.';
COMMENT ON COLUMN mlpipe.model_versions.features IS 'The feature names, in the order the float8[] forms of predict take them.';
COMMENT ON COLUMN mlpipe.model_versions.target IS 'The target column of a supervised model (NULL for clustering).';
COMMENT ON COLUMN mlpipe.model_versions.classes IS 'The class labels of a classifier, in the order of predict_proba.';
COMMENT ON COLUMN mlpipe.model_versions.metrics IS 'The metrics measured at training (test split, out-of-bag, ...).';
COMMENT ON COLUMN mlpipe.model_versions.training_rows IS 'Rows the model was trained on.';
COMMENT ON COLUMN mlpipe.model_versions.skipped_rows IS 'Source rows skipped (NULL or non-finite values that could not be used).';
COMMENT ON COLUMN mlpipe.model_versions.artifact IS 'The model in the binary artifact format (docs/artifact-format.md).';
COMMENT ON COLUMN mlpipe.model_versions.size IS 'The artifact size in bytes.';
COMMENT ON COLUMN mlpipe.model_versions.sha256 IS 'The hex SHA-256 of the artifact.';
COMMENT ON COLUMN mlpipe.model_versions.status IS 'candidate, promoted or rejected (by the gate).';
COMMENT ON COLUMN mlpipe.model_versions.gate IS 'The gate applied at registration and its verdict.';
COMMENT ON COLUMN mlpipe.model_versions.created_at IS 'When the version was registered.';
COMMENT ON COLUMN mlpipe.model_versions.created_by IS 'The user who trained the version.';
COMMENT ON COLUMN mlpipe.model_versions.run_id IS 'The training run (mlpipe.runs).';
COMMENT ON COLUMN mlpipe.model_versions.source IS 'The table, view or query the version was trained on.';
COMMENT ON COLUMN mlpipe.model_versions.mlpipe_version IS 'The mlpipe version that trained it.';
COMMENT ON COLUMN mlpipe.model_versions.lineage IS 'How it was trained: warm start parent, split, seed, as_of, ...';
COMMENT ON COLUMN mlpipe.model_versions.tags IS 'Version tags (key to text value), set with mlpipe.tag.';
COMMENT ON COLUMN mlpipe.aliases.model IS 'The model the alias belongs to.';
COMMENT ON COLUMN mlpipe.aliases.alias IS 'The alias name, as in name@alias (production when a reference has none).';
COMMENT ON COLUMN mlpipe.aliases.version IS 'The version the alias points to.';
COMMENT ON COLUMN mlpipe.aliases.updated_at IS 'When the alias last moved.';
COMMENT ON COLUMN mlpipe.aliases.updated_by IS 'The user who last moved the alias.';
COMMENT ON COLUMN mlpipe.alias_events.event_id IS 'The event number, in the order the changes happened.';
COMMENT ON COLUMN mlpipe.alias_events.model IS 'The model whose alias changed.';
COMMENT ON COLUMN mlpipe.alias_events.alias IS 'The alias that changed.';
COMMENT ON COLUMN mlpipe.alias_events.from_version IS 'The version the alias pointed to before (NULL when it was new).';
COMMENT ON COLUMN mlpipe.alias_events.to_version IS 'The version the alias points to after.';
COMMENT ON COLUMN mlpipe.alias_events.action IS 'promote or rollback.';
COMMENT ON COLUMN mlpipe.alias_events.reason IS 'The reason given to promote or rollback.';
COMMENT ON COLUMN mlpipe.alias_events.at IS 'When the alias changed.';
COMMENT ON COLUMN mlpipe.alias_events.by_user IS 'The user who changed the alias.';
COMMENT ON COLUMN mlpipe.metrics.run_id IS 'The run that measured the metric.';
COMMENT ON COLUMN mlpipe.metrics.model IS 'The model measured, if any.';
COMMENT ON COLUMN mlpipe.metrics.version IS 'The model version measured, if any.';
COMMENT ON COLUMN mlpipe.metrics.split IS 'The rows it was measured on: train, test, validation, oob or scoring.';
COMMENT ON COLUMN mlpipe.metrics.metric IS 'The metric name (accuracy, rmse, inertia, ...).';
COMMENT ON COLUMN mlpipe.metrics.value IS 'The metric value.';
COMMENT ON COLUMN mlpipe.metrics.recorded_at IS 'When the metric was recorded.';
COMMENT ON FUNCTION mlpipe._refuse_history_change() IS 'Trigger function that refuses UPDATE, DELETE and TRUNCATE on mlpipe.alias_events (append-only history).';
COMMENT ON TYPE mlpipe.fit_result IS 'What mlpipe._fit returns: artifact, task, features, classes, metrics and training information.';
COMMENT ON TYPE mlpipe.train_result IS 'The row mlpipe.train and mlpipe.search return: model, version, promoted, metrics and run_id.';
COMMENT ON TYPE mlpipe.ts_summary IS 'The result of mlpipe.ts_features: moments, quantiles, slope, changes, autocorrelation and gaps of a time series.';
COMMENT ON TYPE mlpipe.value_summary IS 'The result of mlpipe.summary: count, nulls, moments and quantiles of a column.';

-- sql/src/10-registry.sql
COMMENT ON FUNCTION mlpipe.version() IS 'The installed mlpipe version.';
COMMENT ON FUNCTION mlpipe.resolve(text) IS
    'Resolves name, name@alias or name@version to a model and version.';
COMMENT ON FUNCTION mlpipe.artifact(text) IS
    'The artifact bytes of a version, for the bytea forms of predict or export.';
COMMENT ON FUNCTION mlpipe._resolve_key(text) IS
    'Resolves a model_ref to model, version and artifact sha256 (the per-statement key of the predict cache).';
COMMENT ON FUNCTION mlpipe._artifact_at(text, int) IS
    'The artifact of one model version (SECURITY DEFINER reader for the scoring functions).';
COMMENT ON FUNCTION mlpipe._main_metric(text) IS
    'The main metric of a task and whether larger is better (the default gate).';
COMMENT ON FUNCTION mlpipe._gate_verdict(text, text, jsonb, jsonb) IS
    'Checks a version''s metrics against a gate (min, max, must_beat, tolerance) and returns the verdict.';
COMMENT ON FUNCTION mlpipe._set_alias(text, text, int, text, text) IS
    'Moves an alias and records the event in mlpipe.alias_events (the one place aliases change).';
COMMENT ON FUNCTION mlpipe._notify(text, jsonb) IS
    'Sends an event on the mlpipe_events channel (delivered at commit).';
COMMENT ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) IS
    'Records a fitted model: model row, run, version, metrics, gate verdict and alias.';
COMMENT ON FUNCTION mlpipe.features(text) IS
    'The feature names of a version, in the order the float8[] forms of predict take them.';
COMMENT ON FUNCTION mlpipe.classes(text) IS
    'The class labels of a classifier, in the order of predict_proba; NULL for other models.';
COMMENT ON FUNCTION mlpipe.model_info(text) IS
    'Everything about a version in one jsonb document: parameters, metrics, gate, lineage, tags, aliases and training information.';
COMMENT ON FUNCTION mlpipe._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) IS
    'Records a finished run and its numeric metrics (the one writer of runs rows outside training).';
COMMENT ON FUNCTION mlpipe._fit_claim(mlpipe.fit_result, text) IS
    'True, once, when mlpipe._fit returned exactly this result for this algorithm in the current transaction.';
COMMENT ON FUNCTION mlpipe._require_model(text) IS
    'Raises 42704 naming the model, with the registered names in the HINT, unless it exists.';
COMMENT ON FUNCTION mlpipe._require_alias_name(text) IS
    'Raises 22023 unless the alias name follows the rule of mlpipe.aliases.';
COMMENT ON FUNCTION mlpipe._event_payload(text, jsonb) IS
    'The JSON payload of an mlpipe_events notification, cut to fit the NOTIFY limit.';
COMMENT ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) IS
    'Points an alias at a version, optionally checking a gate first, and records the change.';
COMMENT ON FUNCTION mlpipe._alias_stack(text, text) IS
    'The rollback stack of an alias, replayed from mlpipe.alias_events.';
COMMENT ON FUNCTION mlpipe.rollback(text, text, text) IS
    'Moves an alias back to the version it pointed to before its current one.';
COMMENT ON FUNCTION mlpipe.version_at(text, timestamptz, text) IS
    'The version an alias pointed to at a past time (time travel).';
COMMENT ON FUNCTION mlpipe.prune(text, int, interval) IS
    'Deletes old versions beyond the newest keep that are older than retain, never one an alias points to.';
COMMENT ON FUNCTION mlpipe._require_tag(text, text, boolean) IS
    'Raises 22023 unless the tag key is usable, 54000 for a value over 4096 characters.';
COMMENT ON FUNCTION mlpipe._set_tag(text, int, text, text, boolean) IS
    'Sets or removes a tag on a model or one of its versions and returns the tags after.';
COMMENT ON FUNCTION mlpipe.tag(text, text, text) IS
    'Sets a tag on a model or on one version (the model).';
COMMENT ON FUNCTION mlpipe.tag(text, int, text, text) IS
    'Sets a tag on a model or on one version (this version).';
COMMENT ON FUNCTION mlpipe.untag(text, text) IS
    'Removes a tag from a model or a version (the model).';
COMMENT ON FUNCTION mlpipe.untag(text, int, text) IS
    'Removes a tag from a model or a version (this version).';

-- sql/src/20-training.sql
COMMENT ON FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) IS
    'Trains an algorithm on a source in C and returns the artifact, metrics and fit token for _register.';
COMMENT ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) IS
    'The body of mlpipe.train: checks and profiles the source, fits, registers and stores the profile.';
COMMENT ON FUNCTION mlpipe.train(text, text, text, text, text[], jsonb, jsonb) IS
    'Trains a model on a table, view or SELECT, records its metrics and registers it as a new version (promoted when the gate passes).';

-- sql/src/30-scoring.sql
COMMENT ON FUNCTION mlpipe.predict(text, float8[]) IS
    'Scores one row: cluster number (0-based), class index or regression value, by model_ref (features as float8[]).';
COMMENT ON FUNCTION mlpipe.predict(bytea, float8[]) IS
    'Scores one row: cluster number (0-based), class index or regression value, by artifact (features as float8[]).';
COMMENT ON FUNCTION mlpipe.export(bytea) IS
    'The model as JSON (trees, centroids, preprocessing) for inspection or other tools, by artifact.';
COMMENT ON FUNCTION mlpipe.export(text) IS
    'The model as JSON (trees, centroids, preprocessing) for inspection or other tools, by model_ref.';
COMMENT ON FUNCTION mlpipe.predict_label(text, float8[]) IS
    'The predicted class label as it was in the training target (text), by model_ref (features as float8[]).';
COMMENT ON FUNCTION mlpipe.predict_label(bytea, float8[]) IS
    'The predicted class label as it was in the training target (text), by artifact (features as float8[]).';
COMMENT ON FUNCTION mlpipe.predict_proba(text, float8[]) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by model_ref (features as float8[]).';
COMMENT ON FUNCTION mlpipe.predict_proba(bytea, float8[]) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by artifact (features as float8[]).';
COMMENT ON FUNCTION mlpipe._importance(bytea) IS
    'Gain-based feature importance of a tree artifact, one value per feature.';
COMMENT ON FUNCTION mlpipe.feature_importance(text) IS
    'Gain-based importance of each feature of a tree model (sums to 1).';
COMMENT ON FUNCTION mlpipe.predict(text, record) IS
    'Scores one row: cluster number (0-based), class index or regression value, by model_ref (row form: columns matched by name).';
COMMENT ON FUNCTION mlpipe.predict(bytea, record) IS
    'Scores one row: cluster number (0-based), class index or regression value, by artifact (row form: columns matched by name).';
COMMENT ON FUNCTION mlpipe.predict_label(text, record) IS
    'The predicted class label as it was in the training target (text), by model_ref (row form: columns matched by name).';
COMMENT ON FUNCTION mlpipe.predict_label(bytea, record) IS
    'The predicted class label as it was in the training target (text), by artifact (row form: columns matched by name).';
COMMENT ON FUNCTION mlpipe.predict_proba(text, record) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by model_ref (row form: columns matched by name).';
COMMENT ON FUNCTION mlpipe.predict_proba(bytea, record) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by artifact (row form: columns matched by name).';
COMMENT ON FUNCTION mlpipe._score_class(text, float8[]) IS
    'A classifier''s class index for predict_table (shares one evaluation with _score_label and _score_proba).';
COMMENT ON FUNCTION mlpipe._score_label(text, float8[]) IS
    'A classifier''s class label for predict_table (shares one evaluation with _score_class and _score_proba).';
COMMENT ON FUNCTION mlpipe._score_proba(text, float8[]) IS
    'A classifier''s class probabilities for predict_table (shares one evaluation with _score_class and _score_label).';
COMMENT ON FUNCTION mlpipe._source_sql(text) IS
    'The SELECT a source (table, view or query) stands for, as training reads it.';
COMMENT ON FUNCTION mlpipe._source_columns(text) IS
    'Column names and types of a source, read as the caller (LIMIT 0).';
COMMENT ON FUNCTION mlpipe._bin_counts_accum(bigint[], int, int) IS
    'Transition function of _bin_counts: adds one row to its bin.';
COMMENT ON FUNCTION mlpipe._bin_counts_combine(bigint[], bigint[]) IS
    'Combine function of _bin_counts: adds two count arrays.';
COMMENT ON AGGREGATE mlpipe._bin_counts(int, int) IS
    'Rows per bin: a bigint[nbins] of counts of 0-based bins (NULL bins not counted).';
COMMENT ON FUNCTION mlpipe._edges(float8[]) IS
    'Sorted distinct non-null values of an array (quantiles to bin edges).';
COMMENT ON FUNCTION mlpipe._bin_of(float8, float8[]) IS
    'The profile bin of a value given sorted distinct edges.';
COMMENT ON FUNCTION mlpipe._type_class(regtype) IS
    'Type class of a column type for profiling: numeric, array, categorical or other.';
COMMENT ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) IS
    'The features to profile for a training source, one row per feature with its type class.';
COMMENT ON FUNCTION mlpipe._as_of_source(text, jsonb) IS
    'A source restricted by params.as_of / as_of_column, and the lineage to record.';
COMMENT ON FUNCTION mlpipe._check_data(text, jsonb) IS
    'Runs the params.checks data checks over a source and raises 22000 naming every failing check.';
COMMENT ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) IS
    'Profiles a training source (bin edges and shares per feature) from one sampled scan.';
COMMENT ON FUNCTION mlpipe._set_profile(text, int, jsonb) IS
    'Stores the profile of a version the session user created in the current transaction.';
COMMENT ON FUNCTION mlpipe.profile(text) IS
    'The training profile of a version (bin edges and shares per feature) used by drift.';
COMMENT ON FUNCTION mlpipe._scoring_info(text) IS
    'What scoring a model_ref needs, in one SECURITY DEFINER lookup.';
COMMENT ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) IS
    'PSI and null rates of each profiled feature of a source against a profile.';
COMMENT ON FUNCTION mlpipe._drift_status(float8, float8, float8, float8, float8) IS
    'The status (ok, drift, new_values, ...) of one feature''s drift figures.';
COMMENT ON FUNCTION mlpipe.drift(text, text, float8, float8) IS
    'Population stability index and null rates of each feature of a source against the training profile of a version.';
COMMENT ON FUNCTION mlpipe._has_preprocessing(bytea) IS
    'True when a model artifact stores preprocessing.';
COMMENT ON FUNCTION mlpipe._feature_array_expr(text[], text) IS
    'The SQL of the float8[] a model without preprocessing scores, over the alias src.';
COMMENT ON FUNCTION mlpipe._parse_into(text) IS
    'The qualified and display names of the into argument of predict_table.';
COMMENT ON FUNCTION mlpipe._check_target(regclass, text, regtype, text) IS
    'Checks that an existing predict_table target has the columns and unique index the mode needs.';
COMMENT ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) IS
    'Scores every row of a source into a table (append, replace, upsert or insert mode).';

-- sql/src/40-features.sql
COMMENT ON FUNCTION mlpipe._ts_features_trans(internal, timestamptz, float8) IS
    'Transition function of the ts_features aggregates.';
COMMENT ON FUNCTION mlpipe._summary_trans(internal, float8) IS
    'Transition function of the summary aggregates.';
COMMENT ON FUNCTION mlpipe._features_combine(internal, internal) IS
    'Combine function of the ts_features and summary aggregates (parallel aggregation).';
COMMENT ON FUNCTION mlpipe._features_serial(internal) IS
    'Serialises the state of the ts_features and summary aggregates.';
COMMENT ON FUNCTION mlpipe._features_deserial(bytea, internal) IS
    'Deserialises the state of the ts_features and summary aggregates.';
COMMENT ON FUNCTION mlpipe._ts_features_final(internal) IS 'Final function of mlpipe.ts_features.';
COMMENT ON FUNCTION mlpipe._summary_final(internal) IS 'Final function of mlpipe.summary.';
COMMENT ON AGGREGATE mlpipe.ts_features(timestamptz, float8) IS
    'Summary of a time series in one pass: moments, quantiles, slope, changes, autocorrelation and gaps.';
COMMENT ON AGGREGATE mlpipe.summary(float8) IS
    'Distribution summary of a column: n, n_null, mean, std, min, max, quantiles, skewness and kurtosis.';

-- sql/src/50-evaluation.sql
COMMENT ON FUNCTION mlpipe._label_trans(internal, text, text) IS
    'Transition function of the label metric aggregates.';
COMMENT ON FUNCTION mlpipe._label_trans(internal, bigint, bigint) IS
    'Transition function of the label metric aggregates.';
COMMENT ON FUNCTION mlpipe._label_trans(internal, boolean, boolean) IS
    'Transition function of the label metric aggregates.';
COMMENT ON FUNCTION mlpipe._label_combine(internal, internal) IS
    'Combine function of the label metric aggregates (parallel aggregation).';
COMMENT ON FUNCTION mlpipe._label_serial(internal) IS
    'Serialises the state of the label metric aggregates.';
COMMENT ON FUNCTION mlpipe._label_deserial(bytea, internal) IS
    'Deserialises the state of the label metric aggregates.';
COMMENT ON FUNCTION mlpipe._accuracy_final(internal) IS 'Final function of mlpipe.accuracy.';
COMMENT ON AGGREGATE mlpipe.accuracy(text, text) IS 'Share of rows where prediction equals truth.';
COMMENT ON AGGREGATE mlpipe.accuracy(bigint, bigint) IS
    'Share of rows where prediction equals truth.';
COMMENT ON AGGREGATE mlpipe.accuracy(boolean, boolean) IS
    'Share of rows where prediction equals truth.';
COMMENT ON FUNCTION mlpipe._precision_macro_final(internal) IS
    'Final function of mlpipe.precision_macro.';
COMMENT ON AGGREGATE mlpipe.precision_macro(text, text) IS
    'Precision averaged over the labels present in either column (zero_division 0).';
COMMENT ON AGGREGATE mlpipe.precision_macro(bigint, bigint) IS
    'Precision averaged over the labels present in either column (zero_division 0).';
COMMENT ON AGGREGATE mlpipe.precision_macro(boolean, boolean) IS
    'Precision averaged over the labels present in either column (zero_division 0).';
COMMENT ON FUNCTION mlpipe._recall_macro_final(internal) IS 'Final function of mlpipe.recall_macro.';
COMMENT ON AGGREGATE mlpipe.recall_macro(text, text) IS
    'Recall averaged over the labels present in either column (zero_division 0).';
COMMENT ON AGGREGATE mlpipe.recall_macro(bigint, bigint) IS
    'Recall averaged over the labels present in either column (zero_division 0).';
COMMENT ON AGGREGATE mlpipe.recall_macro(boolean, boolean) IS
    'Recall averaged over the labels present in either column (zero_division 0).';
COMMENT ON FUNCTION mlpipe._f1_macro_final(internal) IS 'Final function of mlpipe.f1_macro.';
COMMENT ON AGGREGATE mlpipe.f1_macro(text, text) IS
    'F1 averaged over the labels present in either column.';
COMMENT ON AGGREGATE mlpipe.f1_macro(bigint, bigint) IS
    'F1 averaged over the labels present in either column.';
COMMENT ON AGGREGATE mlpipe.f1_macro(boolean, boolean) IS
    'F1 averaged over the labels present in either column.';
COMMENT ON FUNCTION mlpipe._f1_weighted_final(internal) IS 'Final function of mlpipe.f1_weighted.';
COMMENT ON AGGREGATE mlpipe.f1_weighted(text, text) IS
    'F1 per label weighted by the label''s support.';
COMMENT ON AGGREGATE mlpipe.f1_weighted(bigint, bigint) IS
    'F1 per label weighted by the label''s support.';
COMMENT ON AGGREGATE mlpipe.f1_weighted(boolean, boolean) IS
    'F1 per label weighted by the label''s support.';
COMMENT ON FUNCTION mlpipe._confusion_matrix_final(internal) IS
    'Final function of mlpipe.confusion_matrix.';
COMMENT ON AGGREGATE mlpipe.confusion_matrix(text, text) IS
    'Confusion matrix as jsonb {"labels": [...], "matrix": [[...]]}: rows are true labels, columns predictions.';
COMMENT ON AGGREGATE mlpipe.confusion_matrix(bigint, bigint) IS
    'Confusion matrix as jsonb {"labels": [...], "matrix": [[...]]}: rows are true labels, columns predictions.';
COMMENT ON AGGREGATE mlpipe.confusion_matrix(boolean, boolean) IS
    'Confusion matrix as jsonb {"labels": [...], "matrix": [[...]]}: rows are true labels, columns predictions.';
COMMENT ON FUNCTION mlpipe._log_loss_trans(internal, boolean, float8) IS
    'Transition function of the log_loss aggregates.';
COMMENT ON FUNCTION mlpipe._log_loss_trans(internal, text, float8[], text[]) IS
    'Transition function of the log_loss aggregates.';
COMMENT ON FUNCTION mlpipe._log_loss_combine(internal, internal) IS
    'Combine function of the log_loss aggregates (parallel aggregation).';
COMMENT ON FUNCTION mlpipe._log_loss_serial(internal) IS
    'Serialises the state of the log_loss aggregates.';
COMMENT ON FUNCTION mlpipe._log_loss_deserial(bytea, internal) IS
    'Deserialises the state of the log_loss aggregates.';
COMMENT ON FUNCTION mlpipe._log_loss_final(internal) IS 'Final function of mlpipe.log_loss.';
COMMENT ON AGGREGATE mlpipe.log_loss(boolean, float8) IS
    'Cross-entropy, as scikit-learn 1.2 (probabilities clipped to [eps, 1-eps], rows renormalised).';
COMMENT ON AGGREGATE mlpipe.log_loss(text, float8[], text[]) IS
    'Cross-entropy, as scikit-learn 1.2 (probabilities clipped to [eps, 1-eps], rows renormalised).';
COMMENT ON FUNCTION mlpipe._roc_auc_trans(internal, boolean, float8) IS
    'Transition function of the roc_auc aggregates.';
COMMENT ON FUNCTION mlpipe._roc_auc_trans(internal, text, float8[], text[]) IS
    'Transition function of the roc_auc aggregates.';
COMMENT ON FUNCTION mlpipe._roc_auc_combine(internal, internal) IS
    'Combine function of the roc_auc aggregates (parallel aggregation).';
COMMENT ON FUNCTION mlpipe._roc_auc_serial(internal) IS
    'Serialises the state of the roc_auc aggregates.';
COMMENT ON FUNCTION mlpipe._roc_auc_deserial(bytea, internal) IS
    'Deserialises the state of the roc_auc aggregates.';
COMMENT ON FUNCTION mlpipe._roc_auc_final(internal) IS 'Final function of mlpipe.roc_auc.';
COMMENT ON AGGREGATE mlpipe.roc_auc(boolean, float8) IS
    'Area under the ROC curve: binary (ties at half credit) or macro one-vs-rest over the classes present.';
COMMENT ON AGGREGATE mlpipe.roc_auc(text, float8[], text[]) IS
    'Area under the ROC curve: binary (ties at half credit) or macro one-vs-rest over the classes present.';
COMMENT ON FUNCTION mlpipe._reg_trans(internal, float8, float8) IS
    'Transition function of the regression metric aggregates.';
COMMENT ON FUNCTION mlpipe._reg_combine(internal, internal) IS
    'Combine function of the regression metric aggregates (parallel aggregation).';
COMMENT ON FUNCTION mlpipe._reg_serial(internal) IS
    'Serialises the state of the regression metric aggregates.';
COMMENT ON FUNCTION mlpipe._reg_deserial(bytea, internal) IS
    'Deserialises the state of the regression metric aggregates.';
COMMENT ON FUNCTION mlpipe._rmse_final(internal) IS 'Final function of mlpipe.rmse.';
COMMENT ON AGGREGATE mlpipe.rmse(float8, float8) IS 'Root mean squared error.';
COMMENT ON FUNCTION mlpipe._mae_final(internal) IS 'Final function of mlpipe.mae.';
COMMENT ON AGGREGATE mlpipe.mae(float8, float8) IS 'Mean absolute error.';
COMMENT ON FUNCTION mlpipe._r2_final(internal) IS 'Final function of mlpipe.r2.';
COMMENT ON AGGREGATE mlpipe.r2(float8, float8) IS
    'Coefficient of determination (1 for an exact prediction of a constant truth, else 0 then).';
COMMENT ON FUNCTION mlpipe._mape_final(internal) IS 'Final function of mlpipe.mape.';
COMMENT ON AGGREGATE mlpipe.mape(float8, float8) IS
    'Mean absolute percentage error, dividing by max(abs(y), eps) as scikit-learn (a fraction, not %).';
COMMENT ON FUNCTION mlpipe._points_trans(internal, float8[], int) IS
    'Transition function of the clustering metric aggregates.';
COMMENT ON FUNCTION mlpipe._points_combine(internal, internal) IS
    'Combine function of the clustering metric aggregates (parallel aggregation).';
COMMENT ON FUNCTION mlpipe._points_serial(internal) IS
    'Serialises the state of the clustering metric aggregates.';
COMMENT ON FUNCTION mlpipe._points_deserial(bytea, internal) IS
    'Deserialises the state of the clustering metric aggregates.';
COMMENT ON FUNCTION mlpipe._silhouette_final(internal) IS 'Final function of mlpipe.silhouette.';
COMMENT ON AGGREGATE mlpipe.silhouette(float8[], int) IS
    'Mean silhouette coefficient, Euclidean, exact O(n^2).';
COMMENT ON FUNCTION mlpipe._calinski_harabasz_final(internal) IS
    'Final function of mlpipe.calinski_harabasz.';
COMMENT ON AGGREGATE mlpipe.calinski_harabasz(float8[], int) IS
    'Calinski-Harabasz score (between/within dispersion).';
COMMENT ON FUNCTION mlpipe._davies_bouldin_final(internal) IS
    'Final function of mlpipe.davies_bouldin.';
COMMENT ON AGGREGATE mlpipe.davies_bouldin(float8[], int) IS
    'Davies-Bouldin score (lower is better).';
COMMENT ON FUNCTION mlpipe._eval_from(text) IS
    'A source (table or view name, or a query) as a FROM item, resolved as the caller.';
COMMENT ON FUNCTION mlpipe._eval_model(text) IS
    'What evaluate needs of a version: names, task, target, features, classes and artifact.';
COMMENT ON FUNCTION mlpipe._eval_input(text[], boolean) IS
    'The SQL of the scoring argument for a source row: the row itself or the float8[] of its features.';
COMMENT ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) IS
    'Scores a FROM item with an artifact and returns the metrics of the task as jsonb.';
COMMENT ON FUNCTION mlpipe._eval_finish_run(bigint, bigint, jsonb, jsonb, text, jsonb, text) IS
    'Finishes a cross-validation or search run this session user started: status, rows, duration and metrics.';
COMMENT ON FUNCTION mlpipe.evaluate(text, text) IS
    'Scores a source with a registered version and returns the metrics of its task as jsonb.';
COMMENT ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) IS
    'k-fold cross-validation behind cross_validate and each search trial.';
COMMENT ON FUNCTION mlpipe.cross_validate(text, text, text, text[], jsonb, int) IS
    'k-fold cross-validation of an algorithm on a source, logged as runs, without registering a model.';
COMMENT ON FUNCTION mlpipe._search_candidates(jsonb, text, int) IS
    'The parameter sets of a search: the grid of the space''s lists, or random draws from lists and ranges.';
COMMENT ON FUNCTION mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) IS
    'The body of mlpipe.search: cross-validates every candidate, then trains the best on all rows.';
COMMENT ON FUNCTION mlpipe.search(text, text, text, text, text[], jsonb, text, int, int, jsonb) IS
    'Hyper-parameter search: cross-validates every candidate, trains the best on all rows and registers it.';

-- sql/src/60-pipelines.sql
COMMENT ON COLUMN mlpipe.pipelines.name IS 'The pipeline name.';
COMMENT ON COLUMN mlpipe.pipelines.version IS 'The current version (the newest in mlpipe.pipeline_versions).';
COMMENT ON COLUMN mlpipe.pipelines.config IS 'The validated config of the current version.';
COMMENT ON COLUMN mlpipe.pipelines.description IS 'The description given in the config.';
COMMENT ON COLUMN mlpipe.pipelines.created_at IS 'When the first version was created.';
COMMENT ON COLUMN mlpipe.pipelines.created_by IS 'The user who created the first version.';
COMMENT ON COLUMN mlpipe.pipelines.updated_at IS 'When the current version was created or the schedule changed.';
COMMENT ON COLUMN mlpipe.pipelines.updated_by IS 'The user who made the last change.';
COMMENT ON COLUMN mlpipe.pipelines.schedule IS 'The cron expression while scheduled, else NULL.';
COMMENT ON COLUMN mlpipe.pipelines.cron_job_id IS 'The pg_cron job id while scheduled, else NULL.';
COMMENT ON COLUMN mlpipe.pipeline_versions.name IS 'The pipeline name.';
COMMENT ON COLUMN mlpipe.pipeline_versions.version IS 'The version number, 1, 2, ... per pipeline.';
COMMENT ON COLUMN mlpipe.pipeline_versions.config IS 'The validated config of this version.';
COMMENT ON COLUMN mlpipe.pipeline_versions.created_at IS 'When the version was created.';
COMMENT ON COLUMN mlpipe.pipeline_versions.created_by IS 'The user who created the version.';
COMMENT ON FUNCTION mlpipe._refuse_pipeline_history_change() IS
    'Trigger function that refuses UPDATE, DELETE and TRUNCATE on mlpipe.pipeline_versions.';
COMMENT ON FUNCTION mlpipe._pipeline_check(text, boolean) IS
    'Validates a pipeline config and returns it as jsonb, or raises naming the path of the error.';
COMMENT ON FUNCTION mlpipe._pipeline_unknown(text) IS
    'Raises 42704 for an unknown pipeline, with the existing ones in the HINT.';
COMMENT ON FUNCTION mlpipe._pipeline_store(text, jsonb) IS
    'Stores a validated config as the pipeline''s next version (the one place pipelines are written).';
COMMENT ON FUNCTION mlpipe.create_pipeline(text, text) IS
    'Validates a pipeline config and stores it as a new version of the named pipeline (config as YAML or JSON text).';
COMMENT ON FUNCTION mlpipe.create_pipeline(text, jsonb) IS
    'Validates a pipeline config and stores it as a new version of the named pipeline (config as jsonb).';
COMMENT ON FUNCTION mlpipe.drop_pipeline(text) IS
    'Unschedules and removes a pipeline; its versions'' history and runs stay.';
COMMENT ON FUNCTION mlpipe._pipeline_delete(text) IS
    'Deletes a pipeline row (its history and runs stay).';
COMMENT ON FUNCTION mlpipe._pipeline_run_begin(text, int, jsonb) IS
    'Starts a pipeline run row and returns its run_id.';
COMMENT ON FUNCTION mlpipe._pipeline_run_end(bigint, text, text, bigint) IS
    'Finishes a pipeline run that is still running.';
COMMENT ON FUNCTION mlpipe._pipeline_adopt(bigint, bigint) IS
    'Links the runs a pipeline step made to the step''s run.';
COMMENT ON FUNCTION mlpipe._pipeline_ident(text) IS
    'A [schema.]table name from a pipeline config, quoted for SQL.';
COMMENT ON FUNCTION mlpipe._pipeline_from(text) IS
    'A pipeline source as a FROM item: a relation or a query in parentheses.';
COMMENT ON FUNCTION mlpipe._pipeline_texts(jsonb) IS
    'A JSON array of strings as text[] (NULL stays NULL).';
COMMENT ON FUNCTION mlpipe._pipeline_features(jsonb) IS
    'Runs a features step: ts_features per group (and period) written into a table.';
COMMENT ON FUNCTION mlpipe._pipeline_step(jsonb) IS
    'Runs one pipeline step as the caller and returns what it produced as jsonb.';
COMMENT ON FUNCTION mlpipe.run_pipeline(text) IS
    'Runs the current version of a pipeline step by step, each step in a subtransaction logged as a run.';
COMMENT ON FUNCTION mlpipe._cron_check(text, text) IS
    'Raises 55000 with a HINT unless pg_cron can be called from this database.';
COMMENT ON FUNCTION mlpipe._pipeline_set_schedule(text, text, bigint) IS
    'Records a pipeline''s cron schedule and pg_cron job id.';
COMMENT ON FUNCTION mlpipe.schedule(text, text) IS
    'Schedules run_pipeline(name) as the pg_cron job mlpipe:<name>, replacing an earlier one.';
COMMENT ON FUNCTION mlpipe.unschedule(text) IS 'Removes the pg_cron job of a pipeline.';
COMMENT ON COLUMN mlpipe.alias_events.action IS 'promote, rollback, or drop (the model was dropped: to_version is NULL).';
CREATE OR REPLACE FUNCTION mlpipe._fit_params(p_params jsonb, p_features text[], p_target text) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN p_params ? 'as_of_column' AND p_features IS NULL
             AND (p_params->>'as_of_column') IS DISTINCT FROM p_target
             AND jsonb_typeof(coalesce(p_params->'exclude', '[]')) = 'array'
             AND NOT coalesce(p_params->'exclude', '[]') ? (p_params->>'as_of_column')
        THEN p - 'exclude' || jsonb_build_object('exclude',
                 coalesce(p_params->'exclude', '[]') || jsonb_build_array(p_params->>'as_of_column'))
        ELSE p END
      FROM (SELECT p_params - 'as_of' - 'as_of_column' - 'checks' - 'profile_sample' AS p) q
$$;
COMMENT ON FUNCTION mlpipe._fit_params(jsonb, text[], text) IS
    'The params mlpipe._fit gets from train''s: its own keys removed, the as_of_column excluded from the features.';
REVOKE ALL ON FUNCTION mlpipe._fit_params(jsonb, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._fit_params(jsonb, text[], text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._warn_id_features(p_src text, p_features text[], p_model text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ints  text[];
    q     text;
    hits  text[];
BEGIN
    SELECT pg_catalog.array_agg(c.name ORDER BY c.ord) INTO ints
      FROM mlpipe._source_columns(p_src) c
     WHERE c.name = ANY (p_features) AND c.type IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype);
    IF ints IS NULL THEN
        RETURN;
    END IF;
    SELECT pg_catalog.format('SELECT ARRAY[%s] FROM (%s) AS mlpipe_src', pg_catalog.string_agg(
               pg_catalog.format('CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.>=) 50 '
                                 'AND pg_catalog.count(%1$I) OPERATOR(pg_catalog.=) pg_catalog.count(*) '
                                 'AND pg_catalog.max(%1$I)::numeric OPERATOR(pg_catalog.-) pg_catalog.min(%1$I)::numeric '
                                 'OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.=) pg_catalog.count(*) THEN %2$L END',
                                 n, n), ', '),
           mlpipe._source_sql(p_src))
      INTO q FROM pg_catalog.unnest(ints) n;
    EXECUTE q INTO hits;
    hits := pg_catalog.array_remove(hits, NULL);
    IF pg_catalog.cardinality(hits) > 0 THEN
        RAISE WARNING 'model "%": feature % looks like a row id (one consecutive integer a row)',
            p_model, pg_catalog.array_to_string(hits, ', ')
            USING HINT = 'Leave it out with params.exclude (or the features argument) unless its value means something.';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe._warn_id_features(text, text[], text) IS
    'Warns about integer features that look like row ids (consecutive values, one a row).';
REVOKE ALL ON FUNCTION mlpipe._warn_id_features(text, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._warn_id_features(text, text[], text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._register(
    p_model text, p_algorithm text, p_source text, p_target text, p_params jsonb,
    p_gate jsonb, p_started timestamptz, p_fit mlpipe.fit_result)
RETURNS mlpipe.train_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_version int;
    v_run     bigint;
    verdict   jsonb;
    v_task    text := p_fit.task;
    ok        boolean;
    lin       jsonb;
    parent    record;
BEGIN
    IF NOT mlpipe._fit_claim(p_fit, p_algorithm) THEN
        RAISE EXCEPTION 'mlpipe._register accepts only a result of mlpipe._fit from the same transaction'
            USING ERRCODE = '42501',
                  HINT = 'Train with mlpipe.train(); a fit result cannot be edited or registered twice.';
    END IF;
    INSERT INTO mlpipe.models AS m (name, task, algorithm, created_by)
        VALUES (p_model, v_task, p_algorithm, session_user)
        ON CONFLICT (name) DO NOTHING;
    -- Locks the model row (serialises version numbers) and checks the task:
    -- a name keeps one meaning, so predict never changes what it returns.
    IF (SELECT m.task FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE) <> v_task THEN
        RAISE EXCEPTION 'model "%" is a % model; this training is %', p_model,
            (SELECT m.task FROM mlpipe.models m WHERE m.name = p_model), v_task
            USING ERRCODE = '22023', HINT = 'Register it under another model name.';
    END IF;
    SELECT coalesce(max(v.version), 0) + 1 INTO v_version
      FROM mlpipe.model_versions v WHERE v.model = p_model;

    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, rows,
                             started_at, finished_at, seconds, created_by)
    VALUES ('train', p_model, v_version, p_algorithm, p_source, p_params, 'succeeded',
            (p_fit.info->>'training_rows')::bigint, p_started, clock_timestamp(),
            extract(epoch FROM clock_timestamp() - p_started), session_user)
    RETURNING runs.run_id INTO v_run;

    verdict := mlpipe._gate_verdict(p_model, v_task, p_fit.metrics, p_gate);
    ok := (verdict->>'passed')::boolean;

    -- Lineage: the warm-start reference resolved now, so it stays exact when
    -- the alias it named moves later.
    lin := coalesce(p_fit.info, '{}') - 'training_rows' - 'skipped_rows' - 'metrics_split';
    IF jsonb_typeof(lin->'warm_start') = 'string' THEN
        BEGIN
            SELECT r.model, r.version INTO parent FROM mlpipe.resolve(lin->>'warm_start') r;
            lin := lin || jsonb_build_object('parent',
                             jsonb_build_object('model', parent.model, 'version', parent.version));
        EXCEPTION WHEN undefined_object THEN
            NULL;   -- '(artifact)' or a reference gone meanwhile: keep the text only
        END;
    END IF;

    INSERT INTO mlpipe.model_versions (model, version, algorithm, task, params, features, target,
        classes, metrics, training_rows, skipped_rows, artifact, sha256, status, gate, run_id,
        source, mlpipe_version, lineage, created_by)
    VALUES (p_model, v_version, p_algorithm, v_task, p_params, p_fit.feature_names, p_target,
        p_fit.classes, p_fit.metrics, (p_fit.info->>'training_rows')::bigint,
        coalesce((p_fit.info->>'skipped_rows')::bigint, 0), p_fit.artifact,
        encode(sha256(p_fit.artifact), 'hex'), CASE WHEN ok THEN 'promoted' ELSE 'candidate' END,
        jsonb_build_object('policy', p_gate) || verdict, v_run, p_source, mlpipe.version(),
        lin, session_user);

    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT v_run, p_model, v_version, coalesce(p_fit.info->>'metrics_split', 'test'), e.key, (e.value)::text::float8
      FROM jsonb_each(p_fit.metrics) e WHERE jsonb_typeof(e.value) = 'number';

    PERFORM mlpipe._notify('version_registered',
        jsonb_build_object('model', p_model, 'version', v_version, 'alias', 'production',
                           'run_id', v_run, 'algorithm', p_algorithm, 'task', v_task,
                           'status', CASE WHEN ok THEN 'promoted' ELSE 'candidate' END));
    IF ok THEN
        PERFORM mlpipe._set_alias(p_model, 'production', v_version, 'promote', verdict->>'reason');
        PERFORM mlpipe._notify('promoted', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason'));
    ELSE
        PERFORM mlpipe._notify('gate_failed', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason',
            'metric', verdict->'metric', 'value', verdict->'value'));
    END IF;
    -- Guardrails, said once the version is stored (see docs/registry.md).
    IF NOT ok THEN
        RAISE NOTICE 'version % of model "%" did not pass its gate and stays a candidate: %',
            v_version, p_model, verdict->>'reason'
            USING HINT = pg_catalog.format('Production keeps its version; to use this one anyway: SELECT mlpipe.promote(%L, %s);',
                                           p_model, v_version);
    END IF;
    IF coalesce((p_fit.info->>'skipped_rows')::bigint, 0) * 5
       > coalesce((p_fit.info->>'skipped_rows')::bigint, 0) + coalesce((p_fit.info->>'training_rows')::bigint, 0)
         + coalesce((p_fit.info->>'test_rows')::bigint, 0) THEN
        RAISE WARNING 'training of "%" skipped % of its % rows (a NULL or non-finite value)', p_model,
            (p_fit.info->>'skipped_rows')::bigint,
            coalesce((p_fit.info->>'skipped_rows')::bigint, 0) + coalesce((p_fit.info->>'training_rows')::bigint, 0)
            + coalesce((p_fit.info->>'test_rows')::bigint, 0)
            USING HINT = 'More than a fifth of the data is left out: impute with params.preprocess, or fix the source.';
    END IF;
    RETURN ROW(p_model, v_version, ok, p_fit.metrics, v_run)::mlpipe.train_result;
END $$;
COMMENT ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) IS
    'Records a fitted model: model row, run, version, metrics, gate verdict and alias.';
REVOKE ALL ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._train(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, with the caller's search_path, grants and row-level security.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := pg_catalog.clock_timestamp();
    warm     bytea;
    fit      mlpipe.fit_result;
    res      mlpipe.train_result;
    src      text := p_source;
    lin      jsonb := '{}';
    sample   int := 20000;    -- the drift sample of predict_table is 20,000 too
    tt       record;
    prof     jsonb;
BEGIN
    IF p_model IS NULL OR p_model = '' OR position('@' IN p_model) > 0
       OR pg_catalog.length(p_model) > 200 OR p_model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF pg_catalog.jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', pg_catalog.jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_params ? 'warm_start'::text THEN
        IF pg_catalog.jsonb_typeof(p_params->'warm_start'::text) <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start'::text);
    END IF;
    IF p_params ? 'profile_sample'::text THEN
        IF pg_catalog.jsonb_typeof(p_params->'profile_sample'::text) <> 'number'
           OR (p_params->>'profile_sample'::text)::numeric NOT BETWEEN 0::numeric AND 10000000::numeric
           OR (p_params->>'profile_sample'::text)::numeric <> pg_catalog.trunc((p_params->>'profile_sample'::text)::numeric) THEN
            RAISE EXCEPTION 'params.profile_sample must be an integer in 0..10000000 (0: no profile)'
                USING ERRCODE = '22023';
        END IF;
        sample := (p_params->>'profile_sample'::text)::int;
    END IF;
    -- Time travel: train on the rows that existed at params.as_of.
    IF p_params ? 'as_of'::text OR p_params ? 'as_of_column'::text THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin OPERATOR(pg_catalog.||) tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks'::text THEN
        lin := lin OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('checked_rows', mlpipe._check_data(src, p_params->'checks'::text));
    END IF;
    -- _fit samples the training profile while it reads the source (seeded
    -- by params.seed) and hands it back in fit.info.profile.
    fit := mlpipe._fit(p_algorithm, src, p_target, p_features,
                       mlpipe._fit_params(p_params, p_features, p_target)
                       || pg_catalog.jsonb_build_object('profile_sample', sample), warm);
    prof := fit.info->'profile'::text;
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := (coalesce(fit.info, '{}') OPERATOR(pg_catalog.-) 'profile'::text) OPERATOR(pg_catalog.||) lin;
    res := mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    IF prof IS NOT NULL THEN
        PERFORM mlpipe._set_profile(res.model, res.version, prof);
    END IF;
    PERFORM mlpipe._warn_id_features(src, fit.feature_names, p_model);
    RETURN res;
END $$;
COMMENT ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) IS
    'The body of mlpipe.train: checks and profiles the source, fits, registers and stores the profile.';
REVOKE ALL ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._set_alias(p_model text, p_alias text, p_version int, p_action text, p_reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old int;
BEGIN
    SELECT a.version INTO old FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias FOR UPDATE;
    INSERT INTO mlpipe.aliases AS a (model, alias, version, updated_by) VALUES (p_model, p_alias, p_version, session_user)
        ON CONFLICT (model, alias) DO UPDATE
        SET version = EXCLUDED.version, updated_at = clock_timestamp(), updated_by = session_user;
    INSERT INTO mlpipe.alias_events (model, alias, from_version, to_version, action, reason, by_user)
        VALUES (p_model, p_alias, old, p_version, p_action, p_reason, session_user);
    -- status follows the production alias: 'promoted' is the version it
    -- points to now, and the version it leaves goes back to 'candidate'
    -- (its history stays in alias_events).
    IF p_alias = 'production' THEN
        UPDATE mlpipe.model_versions v SET status = 'candidate'
         WHERE v.model = p_model AND v.version = old AND old IS DISTINCT FROM p_version
           AND v.status = 'promoted';
        UPDATE mlpipe.model_versions v SET status = 'promoted'
         WHERE v.model = p_model AND v.version = p_version AND v.status <> 'promoted';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe._set_alias(text, text, int, text, text) IS
    'Moves an alias, records the event in mlpipe.alias_events and keeps model_versions.status in line with production (the one place aliases change).';
REVOKE ALL ON FUNCTION mlpipe._set_alias(text, text, int, text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mlpipe.promote(model text, version int, alias text DEFAULT 'production',
                               reason text DEFAULT NULL, gate jsonb DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model   text := $1;
    p_version int := $2;
    p_alias   text := $3;
    p_reason  text := $4;
    p_gate    jsonb := $5;
    cur       int;
    v_task    text;
    v_metrics jsonb;
    v_run     bigint;
    verdict   jsonb;
BEGIN
    PERFORM mlpipe._require_model(p_model);
    PERFORM mlpipe._require_alias_name(p_alias);
    IF p_version IS NULL OR p_version < 1 THEN
        RAISE EXCEPTION 'version must be a positive version number, not %', coalesce(p_version::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;   -- one alias change at a time
    PERFORM mlpipe.resolve(p_model || '@' || p_version);                -- 42704 listing the versions
    SELECT v.task, v.metrics, v.run_id INTO v_task, v_metrics, v_run
      FROM mlpipe.model_versions v WHERE v.model = p_model AND v.version = p_version;
    SELECT a.version INTO cur FROM mlpipe.aliases a WHERE a.model = p_model AND a.alias = p_alias;
    IF cur = p_version THEN
        RAISE NOTICE 'alias "%" of model "%" already points to version %', p_alias, p_model, p_version;
        RETURN p_version;
    END IF;
    IF p_gate IS NOT NULL THEN
        verdict := mlpipe._gate_verdict(p_model, v_task, v_metrics, p_gate);
        IF NOT (verdict->>'passed')::boolean THEN
            UPDATE mlpipe.model_versions v
               SET gate = jsonb_build_object('policy', p_gate, 'alias', p_alias, 'at', clock_timestamp())
                          || verdict
             WHERE v.model = p_model AND v.version = p_version;
            PERFORM mlpipe._notify('gate_failed', jsonb_build_object('model', p_model, 'version', p_version,
                'alias', p_alias, 'run_id', v_run, 'reason', verdict->>'reason',
                'metric', verdict->'metric', 'value', verdict->'value'));
            RAISE NOTICE 'version % of model "%" was not promoted to "%": %',
                p_version, p_model, p_alias, verdict->>'reason';
            RETURN NULL;
        END IF;
    END IF;
    IF p_gate IS NOT NULL THEN
        -- The passing verdict replaces the one training stored (which may
        -- have failed), and the event says the gate passed.
        UPDATE mlpipe.model_versions v
           SET gate = jsonb_build_object('policy', p_gate, 'alias', p_alias, 'at', clock_timestamp())
                      || verdict
         WHERE v.model = p_model AND v.version = p_version;
        p_reason := concat_ws('; ', p_reason,
            pg_catalog.format('gate passed: %s = %s', verdict->>'metric', verdict->>'value'));
    END IF;
    PERFORM mlpipe._set_alias(p_model, p_alias, p_version, 'promote', p_reason);
    PERFORM mlpipe._notify('promoted', jsonb_build_object('model', p_model, 'version', p_version,
        'alias', p_alias, 'run_id', v_run, 'from_version', cur, 'reason', p_reason));
    RETURN p_version;
END $$;
COMMENT ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) IS
    'Points an alias at a version, optionally checking a gate first, and records the change.';
REVOKE ALL ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.promote(text, int, text, text, jsonb) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe._alias_stack(p_model text, p_alias text) RETURNS int[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st int[] := '{}';
    ev record;
BEGIN
    FOR ev IN SELECT e.action, e.to_version FROM mlpipe.alias_events e
               WHERE e.model = p_model AND e.alias = p_alias ORDER BY e.event_id LOOP
        IF ev.action = 'drop' THEN
            st := '{}';     -- the model was dropped: nothing before this counts
        ELSIF ev.action = 'rollback' THEN
            st := st[1:cardinality(st) - 1];
            WHILE cardinality(st) > 0 AND st[cardinality(st)] IS DISTINCT FROM ev.to_version LOOP
                st := st[1:cardinality(st) - 1];
            END LOOP;
            IF cardinality(st) = 0 THEN
                st := ARRAY[ev.to_version];
            END IF;
        ELSE
            st := st || ev.to_version;
        END IF;
    END LOOP;
    RETURN st;
END $$;
COMMENT ON FUNCTION mlpipe._alias_stack(text, text) IS
    'The rollback stack of an alias, replayed from mlpipe.alias_events.';
REVOKE ALL ON FUNCTION mlpipe._alias_stack(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mlpipe.drop_model(name text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p_model  text := $1;
    started  timestamptz := clock_timestamp();
    n_vers   int;
    n_met    bigint;
    dropped  jsonb;
    users    text;
    run      bigint;
BEGIN
    PERFORM mlpipe._require_model(p_model);
    PERFORM 1 FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE;
    SELECT string_agg(DISTINCT p.name, ', ') INTO users
      FROM mlpipe.pipelines p, jsonb_array_elements(p.config->'steps') s
     WHERE split_part(s->>'model', '@', 1) = p_model;
    WITH gone AS (
        DELETE FROM mlpipe.aliases a WHERE a.model = p_model RETURNING a.alias, a.version
    ), ev AS (
        INSERT INTO mlpipe.alias_events (model, alias, from_version, to_version, action, reason, by_user)
        SELECT p_model, g.alias, g.version, NULL, 'drop', 'model dropped', session_user FROM gone g
        RETURNING alias, from_version
    )
    SELECT coalesce(jsonb_object_agg(ev.alias, ev.from_version), '{}') INTO dropped FROM ev;
    DELETE FROM mlpipe.metrics m WHERE m.model = p_model;
    GET DIAGNOSTICS n_met = ROW_COUNT;
    DELETE FROM mlpipe.model_versions v WHERE v.model = p_model;
    GET DIAGNOSTICS n_vers = ROW_COUNT;
    DELETE FROM mlpipe.models m WHERE m.name = p_model;
    run := mlpipe._log_run('drop_model', p_model, NULL, NULL, NULL,
        jsonb_build_object('versions', n_vers, 'aliases', dropped, 'metrics', n_met),
        'succeeded', NULL, n_vers, started);
    PERFORM mlpipe._notify('model_dropped', jsonb_build_object('model', p_model, 'run_id', run,
        'versions', n_vers, 'aliases', dropped));
    IF users IS NOT NULL THEN
        RAISE WARNING 'model "%" is still named by pipeline(s) %', p_model, users
            USING HINT = 'Their next run trains it anew or fails at a step that reads it; change or drop them.';
    END IF;
    RETURN n_vers;
END $$;
COMMENT ON FUNCTION mlpipe.drop_model(text) IS
    'Removes a model with its versions, aliases, tags and metrics (alias_events and runs stay as history) and sends model_dropped.';
REVOKE ALL ON FUNCTION mlpipe.drop_model(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drop_model(text) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe.drift(model_ref text, source text, threshold float8 DEFAULT 0.2,
                             null_threshold float8 DEFAULT 0.1)
RETURNS TABLE (feature text, psi float8, null_rate_train float8, null_rate_now float8, status text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    info    record;
    started timestamptz := pg_catalog.clock_timestamp();
    metrics jsonb := '{}';
    drifted int := 0;
    n       bigint;
BEGIN
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF threshold IS NULL OR threshold <= 0::float8 OR null_threshold IS NULL OR null_threshold <= 0::float8 THEN
        RAISE EXCEPTION 'threshold and null_threshold must be positive numbers' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO info FROM mlpipe._scoring_info(model_ref);
    IF info.profile IS NULL THEN
        RAISE EXCEPTION 'version %@% has no training profile', info.model, info.version
            USING ERRCODE = '22000', HINT = 'Versions trained before mlpipe 0.3.0, or with params.profile_sample = 0, have none; retrain to get one.';
    END IF;
    FOR feature, psi, null_rate_train, null_rate_now, status, n IN
        SELECT d.feature, d.psi, d.null_rate_train, d.null_rate_now,
               mlpipe._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_threshold),
               d.rows_now
          FROM mlpipe._drift_figures(info.profile, source) d LOOP
        -- The same metric names as predict_table: psi:<feature>, null_rate:<feature>.
        metrics := metrics || pg_catalog.jsonb_build_object('psi:' || feature, psi, 'null_rate:' || feature, null_rate_now);
        drifted := drifted + CASE WHEN status = 'drift' THEN 1 ELSE 0 END;
        RETURN NEXT;
    END LOOP;
    -- Logged as a run (kind 'drift', split 'drift') with the version, for
    -- the drift history (mlpipe.drift_history); not in a read-only
    -- transaction (a hot standby), where drift still answers.
    IF pg_catalog.current_setting('transaction_read_only'::text) OPERATOR(pg_catalog.=) 'off'::text THEN
        PERFORM mlpipe._log_run('drift', info.model, info.version, info.algorithm, source,
            pg_catalog.jsonb_build_object('model_ref', model_ref, 'threshold', threshold, 'null_threshold', null_threshold),
            'succeeded', NULL, n, started, NULL,
            metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('drifted_features', drifted), 'drift');
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe.drift(text, text, float8, float8) IS
    'Population stability index and null rates of each feature of a source against the training profile of a version.';
REVOKE ALL ON FUNCTION mlpipe.drift(text, text, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drift(text, text, float8, float8) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe.evaluate(model_ref text, source text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    m       record;
    res     jsonb;
    run     bigint;
BEGIN
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN model_ref IS NULL THEN 'model_ref' ELSE 'source' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM mlpipe._eval_model(model_ref);
    res := mlpipe._eval_metrics(m.artifact, m.task, m.features, m.classes, m.target,
                                mlpipe._eval_from(source));
    -- The confusion matrix (jsonb, not a metric row) rides in the run's
    -- params, for the mlpipe.confusion_matrices view.
    run := mlpipe._log_run('evaluate', m.model, m.version, m.algorithm, source,
                           pg_catalog.jsonb_build_object('model_ref', model_ref)
                           OPERATOR(pg_catalog.||) pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                               'confusion_matrix', res OPERATOR(pg_catalog.->) 'confusion_matrix'::text)),
                           'succeeded', NULL,
                           (res->>'rows'::text)::bigint, started, NULL, res, 'evaluate');
    RETURN res OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('model', m.model, 'version', m.version, 'run_id', run);
END $$;
COMMENT ON FUNCTION mlpipe.evaluate(text, text) IS
    'Scores a source with a registered version and returns the metrics of its task as jsonb.';
REVOKE ALL ON FUNCTION mlpipe.evaluate(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.evaluate(text, text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._pipeline_step(step jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    kind    text := step->>'kind'::text;
    r       jsonb;
    n       bigint;
    params  jsonb;
    skipped bigint;
    total   bigint;
    ref     record;
    src     text;
    feats   text[];
    cond    text;
BEGIN
    CASE kind
    WHEN 'features' THEN
        n := mlpipe._pipeline_features(step);
        RETURN pg_catalog.jsonb_build_object('rows', n, 'result', pg_catalog.jsonb_build_object('into', step->>'into'::text, 'rows', n));
    WHEN 'train' THEN
        params := coalesce(step->'params'::text, '{}');
        -- In a pipeline, k-means skips rows with a NULL feature unless told
        -- otherwise (as the trees do everywhere): a features step gives
        -- NULL statistics for short groups (kurtosis needs 4 readings).
        IF step->>'algorithm'::text IN ('kmeans', 'minibatch_kmeans') AND pg_catalog.jsonb_typeof(params) = 'object'
           AND NOT params ? 'on_null'::text THEN
            params := params OPERATOR(pg_catalog.||) '{"on_null": "skip"}'::jsonb;
        END IF;
        EXECUTE 'SELECT pg_catalog.to_jsonb(t) FROM mlpipe.train($1, $2, $3, $4, $5, $6, $7) AS t'
           INTO r
          USING step->>'model'::text, step->>'algorithm'::text, step->>'source'::text, step->>'target'::text,
                mlpipe._pipeline_texts(step->'features'::text), params, step->'gate'::text;
        SELECT v.skipped_rows, v.training_rows + v.skipped_rows INTO skipped, total
          FROM mlpipe.model_versions v WHERE v.model = r->>'model'::text AND v.version = (r->>'version'::text)::int;
        IF skipped > 0 THEN
            RAISE NOTICE 'train step "%": % of % rows of % skipped (a NULL or non-finite feature)',
                r->>'model'::text, skipped, total, step->>'source'::text
                USING HINT = CASE WHEN params->>'on_null'::text = 'skip' AND NOT coalesce(step->'params'::text, '{}') ? 'on_null'::text
                    THEN 'In a pipeline, k-means defaults to params.on_null = ''skip''; give "on_null": "error" to fail instead.' END;
        END IF;
        RETURN pg_catalog.jsonb_build_object('model', r->>'model'::text, 'version', (r->>'version'::text)::int, 'result', r);
    WHEN 'search' THEN
        EXECUTE 'SELECT pg_catalog.to_jsonb(t) FROM mlpipe.search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS t'
           INTO r
          USING step->>'model'::text, step->>'algorithm'::text, step->>'source'::text, step->>'target'::text,
                mlpipe._pipeline_texts(step->'features'::text), step->'space'::text,
                coalesce(step->>'strategy'::text, 'grid'), coalesce((step->>'folds'::text)::int, 5),
                coalesce((step->>'trials'::text)::int, 20), step->'gate'::text;
        RETURN pg_catalog.jsonb_build_object('model', r->>'model'::text, 'version', (r->>'version'::text)::int, 'result', r);
    WHEN 'predict' THEN
        src := step->>'source'::text;
        -- A k-means version trained with on_null = 'skip' (the pipeline
        -- default) scores only the rows it could have trained on: rows with
        -- a NULL feature are left out, and counted in a NOTICE.
        SELECT v.features INTO feats
          FROM mlpipe.resolve(step->>'model'::text) r
          JOIN mlpipe.model_versions v ON v.model = r.model AND v.version = r.version
         WHERE v.algorithm IN ('kmeans', 'minibatch_kmeans') AND v.params->>'on_null'::text = 'skip';
        IF feats IS NOT NULL THEN
            cond := (SELECT pg_catalog.string_agg(pg_catalog.format('src.%I IS NOT NULL', f), ' AND ') FROM pg_catalog.unnest(feats) f);
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FILTER (WHERE NOT (%s)), pg_catalog.count(*) FROM %s',
                                      cond, mlpipe._pipeline_from(src)) INTO skipped, total;
            IF skipped > 0 THEN
                RAISE NOTICE 'predict step "%": % of % rows of % not scored (a NULL feature)',
                    step->>'model'::text, skipped, total, src
                    USING HINT = 'The model was trained with params.on_null = ''skip''; give "on_null": "error" to its train step to fail instead.';
                src := pg_catalog.format('SELECT src.* FROM %s WHERE %s', mlpipe._pipeline_from(src), cond);
            END IF;
        END IF;
        EXECUTE 'SELECT mlpipe.predict_table($1, $2, $3, $4, $5)'
           INTO n
          USING step->>'model'::text, src, step->>'into'::text, step->>'key'::text, coalesce(step->>'mode'::text, 'append');
        RETURN pg_catalog.jsonb_build_object('model', step->>'model'::text, 'rows', n,
                                  'result', pg_catalog.jsonb_build_object('into', step->>'into'::text, 'rows', n));
    WHEN 'evaluate' THEN
        -- evaluate logs its own run and metrics (a child of the step's run):
        -- the step records the version only, so each metric is logged once.
        EXECUTE 'SELECT pg_catalog.to_jsonb(mlpipe.evaluate($1, $2))' INTO r USING step->>'model'::text, step->>'source'::text;
        RETURN pg_catalog.jsonb_build_object('model', r->>'model'::text, 'version', (r->>'version'::text)::int, 'result', r);
    WHEN 'drift' THEN
        -- drift logs its run with psi:<feature> and null_rate:<feature>
        -- metrics (the names predict_table uses); the step adds none.
        EXECUTE 'SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(d)) FROM mlpipe.drift($1, $2) AS d' INTO r
          USING step->>'model'::text, step->>'source'::text;
        SELECT v.model, v.version INTO ref FROM mlpipe.resolve(step->>'model'::text) v;
        RETURN pg_catalog.jsonb_build_object('model', ref.model, 'version', ref.version, 'result', r);
    ELSE
        RAISE EXCEPTION 'unknown step kind "%"', kind USING ERRCODE = '22023';
    END CASE;
END $$;
COMMENT ON FUNCTION mlpipe._pipeline_step(jsonb) IS
    'Runs one pipeline step as the caller and returns what it produced as jsonb.';
REVOKE ALL ON FUNCTION mlpipe._pipeline_step(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_step(jsonb) TO mlpipe_admin;

CREATE OR REPLACE VIEW mlpipe.version_metrics AS
SELECT v.model, v.version, v.algorithm, v.task, v.status,
       (a.version IS NOT NULL) AS in_production,
       v.created_at, v.created_by, v.training_rows, v.skipped_rows,
       (v.metrics->>'accuracy')::float8          AS accuracy,
       (v.metrics->>'precision_macro')::float8   AS precision_macro,
       (v.metrics->>'recall_macro')::float8      AS recall_macro,
       (v.metrics->>'f1_macro')::float8          AS f1_macro,
       (v.metrics->>'f1_weighted')::float8       AS f1_weighted,
       (v.metrics->>'roc_auc')::float8           AS roc_auc,
       (v.metrics->>'log_loss')::float8          AS log_loss,
       (v.metrics->>'rmse')::float8              AS rmse,
       (v.metrics->>'mae')::float8               AS mae,
       (v.metrics->>'mape')::float8              AS mape,
       (v.metrics->>'r2')::float8                AS r2,
       (v.metrics->>'silhouette')::float8        AS silhouette,
       (v.metrics->>'inertia')::float8           AS inertia,
       (v.metrics->>'davies_bouldin')::float8    AS davies_bouldin,
       (v.metrics->>'calinski_harabasz')::float8 AS calinski_harabasz,
       (v.metrics->>'training_seconds')::float8  AS training_seconds
  FROM mlpipe.model_versions v
  LEFT JOIN mlpipe.aliases a ON a.model = v.model AND a.version = v.version AND a.alias = 'production';
COMMENT ON VIEW mlpipe.version_metrics IS
    'Every model version with its main training metrics as columns (wide form, no JSON).';
REVOKE ALL ON mlpipe.version_metrics FROM PUBLIC;
GRANT SELECT ON mlpipe.version_metrics TO mlpipe_reader;

CREATE OR REPLACE VIEW mlpipe.production_models AS
SELECT m.name AS model, a.version, vm.algorithm, vm.task, a.updated_at AS promoted_at,
       a.updated_by AS promoted_by, vm.created_at AS trained_at, vm.training_rows,
       vm.accuracy, vm.f1_macro, vm.roc_auc, vm.log_loss, vm.rmse, vm.mae, vm.r2,
       vm.silhouette, vm.inertia
  FROM mlpipe.models m
  JOIN mlpipe.aliases a ON a.model = m.name AND a.alias = 'production'
  JOIN mlpipe.version_metrics vm ON vm.model = a.model AND vm.version = a.version;
COMMENT ON VIEW mlpipe.production_models IS
    'One row per model with a production version: the version, when it was promoted and its main metrics as columns.';
REVOKE ALL ON mlpipe.production_models FROM PUBLIC;
GRANT SELECT ON mlpipe.production_models TO mlpipe_reader;

CREATE OR REPLACE VIEW mlpipe.confusion_matrices AS
SELECT r.run_id, r.model, r.version, r.source, r.finished_at AS evaluated_at,
       act.label AS actual, pred.label AS predicted,
       (r.params->'confusion_matrix'->'matrix'->(act.i::int - 1)->>(pred.i::int - 1))::bigint AS count
  FROM mlpipe.runs r,
       jsonb_array_elements_text(r.params->'confusion_matrix'->'labels') WITH ORDINALITY AS act(label, i),
       jsonb_array_elements_text(r.params->'confusion_matrix'->'labels') WITH ORDINALITY AS pred(label, i)
 WHERE r.kind = 'evaluate' AND jsonb_typeof(r.params->'confusion_matrix') = 'object';
COMMENT ON VIEW mlpipe.confusion_matrices IS
    'The confusion matrix of each evaluate run of a classifier as rows (actual, predicted, count).';
REVOKE ALL ON mlpipe.confusion_matrices FROM PUBLIC;
GRANT SELECT ON mlpipe.confusion_matrices TO mlpipe_reader;

CREATE OR REPLACE VIEW mlpipe.drift_history AS
SELECT r.run_id, r.kind, r.model, r.version, r.source, r.finished_at AS measured_at,
       substr(p.metric, 5) AS feature, p.value AS psi, n.value AS null_rate
  FROM mlpipe.runs r
  JOIN mlpipe.metrics p ON p.run_id = r.run_id AND p.metric LIKE 'psi:%'
  LEFT JOIN mlpipe.metrics n ON n.run_id = r.run_id AND n.split = p.split
                            AND n.metric = 'null_rate:' || substr(p.metric, 5);
COMMENT ON VIEW mlpipe.drift_history IS
    'Every population stability index measured (drift, predict_table, pipeline drift steps): one row per run and feature.';
REVOKE ALL ON mlpipe.drift_history FROM PUBLIC;
GRANT SELECT ON mlpipe.drift_history TO mlpipe_reader;

-- The name forms of predict keep resolved references in the backend across
-- statements (src/pg/predict.c). Every statement that writes a registry
-- table sends a relcache invalidation for it, so that every session looks
-- its references up again at its next statement.
CREATE FUNCTION mlpipe._registry_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'mlpipe_registry_changed'
LANGUAGE C;
COMMENT ON FUNCTION mlpipe._registry_changed() IS
    'Trigger function on the registry tables: invalidates the model references the predict functions keep per session and the plans that embedded an artifact.';
REVOKE ALL ON FUNCTION mlpipe._registry_changed() FROM PUBLIC;
CREATE TRIGGER models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mlpipe.models
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._registry_changed();
CREATE TRIGGER model_versions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mlpipe.model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._registry_changed();
CREATE TRIGGER aliases_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mlpipe.aliases
    FOR EACH STATEMENT EXECUTE FUNCTION mlpipe._registry_changed();
-- Fired in every session_replication_role too (restores, logical replicas).
ALTER TABLE mlpipe.models ENABLE ALWAYS TRIGGER models_changed;
ALTER TABLE mlpipe.model_versions ENABLE ALWAYS TRIGGER model_versions_changed;
ALTER TABLE mlpipe.aliases ENABLE ALWAYS TRIGGER aliases_changed;

-- Scoring by name anywhere (issue #11, src/pg/predict_support.c): in a
-- query that touches a Citus table, a constant model reference in the name
-- forms is resolved once while the query is planned on the coordinator
-- (which holds the registry) and the call becomes the artifact form with
-- the artifact as a constant, so shard queries never read the registry.
-- The planner support function below does it for multi-shard queries; the
-- planner hook installed when the library loads does it for router and
-- INSERT ... SELECT queries. Without Citus nothing is rewritten.
CREATE FUNCTION mlpipe._predict_support(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_predict_support'
LANGUAGE C STRICT;
COMMENT ON FUNCTION mlpipe._predict_support(internal) IS
    'Planner support for the name-form scorers: on Citus, a constant model reference becomes the artifact at plan time.';
REVOKE ALL ON FUNCTION mlpipe._predict_support(internal) FROM PUBLIC;

ALTER FUNCTION mlpipe.predict(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_class(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_label(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_proba(text, float8[]) SUPPORT mlpipe._predict_support;

-- predict_table on Citus (issue #11): when the source is a hash-distributed
-- Citus table, a new target is created here as a distributed table on the
-- key, co-located with the source when the key is the source's
-- distribution column, so that predict_table's INSERT ... SELECT scores in
-- the shards and writes each shard's rows into the co-located target shard.
-- Returns the new target, or NULL (nothing created) when Citus is not
-- installed or the source is not a distributed table (a view or a query
-- source: predict_table then creates a plain table as before). Columns
-- and their order are those of the plain table predict_table creates.
-- Resolves the caller's source name, so no pinned search_path; everything
-- else is schema-qualified.
CREATE FUNCTION mlpipe._citus_target(source text, target text, key text, key_type regtype, mode text)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    src_rel  regclass;
    dist_col text;
    tgt      regclass;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL
       OR source OPERATOR(pg_catalog.~*) '^[\s(]*(select|with|values|table)\M' THEN
        RETURN NULL;
    END IF;
    src_rel := pg_catalog.to_regclass(source);
    IF src_rel IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.column_to_column_name(logicalrelid, partkey) FROM pg_catalog.pg_dist_partition '
            'WHERE logicalrelid OPERATOR(pg_catalog.=) $1 AND partmethod OPERATOR(pg_catalog.=) ''h'''
       INTO dist_col USING src_rel;
    IF dist_col IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE %s (%I %s, prediction double precision, label text, '
                              'proba double precision[], model text, version integer, scored_at timestamptz)',
                              target, key, key_type);
    tgt := pg_catalog.to_regclass(target);
    IF dist_col OPERATOR(pg_catalog.=) key THEN
        PERFORM pg_catalog.create_distributed_table(tgt, key, colocate_with => src_rel::text);
    ELSE
        PERFORM pg_catalog.create_distributed_table(tgt, key);
    END IF;
    EXECUTE pg_catalog.format('CREATE %s INDEX ON %s (%I)',
                              CASE WHEN mode IN ('upsert', 'replace') THEN 'UNIQUE' ELSE '' END, target, key);
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO mlpipe_reader', target);
    RETURN tgt;
END $$;
COMMENT ON FUNCTION mlpipe._citus_target(text, text, text, regtype, text) IS
    'For predict_table on Citus: creates a new target distributed on the key, co-located with a distributed source; NULL otherwise.';
REVOKE ALL ON FUNCTION mlpipe._citus_target(text, text, text, regtype, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._citus_target(text, text, text, regtype, text) TO mlpipe_trainer;

-- predict_table: a new target for a distributed source comes from _citus_target.
CREATE OR REPLACE FUNCTION mlpipe.predict_table(model_ref text, source text, "into" text, key text,
                                     mode text DEFAULT 'append', params jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    started    timestamptz := pg_catalog.clock_timestamp();
    info       record;
    ref        text;
    tgt        record;
    rel        regclass;
    key_type   regtype;
    src_sql    text;
    head       text;
    consts     text;
    from_sql   text;
    old_ptc    text;
    old_psc    text;
    xexpr      text;
    filt       text := '';
    n          bigint;
    k          text;
    threshold  float8 := 0.2;
    null_thr   float8 := 0.1;
    sample     int := 20000;
    metrics    jsonb := '{}';
    drifted    jsonb := '[]';
    d          record;
    run        bigint;
BEGIN
    IF model_ref IS NULL OR source IS NULL OR "into" IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'model_ref, source, into and key must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF mode IS NULL OR mode NOT IN ('append', 'replace', 'upsert', 'incremental') THEN
        RAISE EXCEPTION 'unknown mode %', coalesce(pg_catalog.quote_literal(mode), 'NULL')
            USING ERRCODE = '22023', HINT = 'Modes: append, replace, upsert, incremental.';
    END IF;
    params := coalesce(params, '{}');
    IF pg_catalog.jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(params) LOOP
        IF k NOT IN ('drift_threshold', 'null_threshold', 'drift_sample') THEN
            RAISE EXCEPTION 'unknown key "%" in predict_table params', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: drift_threshold, null_threshold, drift_sample.';
        END IF;
        IF pg_catalog.jsonb_typeof(params->k) <> 'number' OR (params->>k)::float8 < 0::float8
           OR (k <> 'drift_sample' AND (params->>k)::float8 = 0::float8)
           OR (k = 'drift_sample' AND (params->>k)::numeric NOT BETWEEN 0::numeric AND 10000000::numeric) THEN
            RAISE EXCEPTION 'predict_table params.% must be a positive number (drift_sample: an integer, 0 for no drift)', k
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    threshold := coalesce((params->>'drift_threshold'::text)::float8, threshold);
    null_thr := coalesce((params->>'null_threshold'::text)::float8, null_thr);
    sample := coalesce((params->>'drift_sample'::text)::numeric::int, sample);

    SELECT * INTO info FROM mlpipe._scoring_info(model_ref);
    ref := info.model OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) info.version;          -- one version for the whole run
    SELECT s.type INTO key_type FROM mlpipe._source_columns(source) s WHERE s.name = key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key column "%" is not in the source', key
            USING ERRCODE = '42703',
                  HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe._source_columns(source) s) OPERATOR(pg_catalog.||) '.';
    END IF;
    IF key IN ('prediction', 'label', 'proba', 'model', 'version', 'scored_at') THEN
        RAISE EXCEPTION 'key column "%" has the name of an output column', key
            USING ERRCODE = '22023', HINT = 'Rename it in a query source, e.g. SELECT model AS model_key, ...';
    END IF;
    src_sql := mlpipe._source_sql(source);
    -- A relation source is read as itself, not as a subquery: on Citus the
    -- whole row of a subquery reaches the shards without its column names
    -- (the row form refuses it), a table's whole row keeps its type.
    IF src_sql LIKE 'SELECT * FROM %' AND source !~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
        src_sql := pg_catalog.substr(src_sql, 15);
    ELSE
        src_sql := '(' || src_sql || ')';
    END IF;
    SELECT * INTO tgt FROM mlpipe._parse_into("into");
    -- Runs into one target serialise (issue #10): two concurrent replace or
    -- incremental runs would each insert every key, and with a unique index
    -- the second would fail with a raw 23505. The lock is on the target's
    -- schema-qualified name (the schema it would be created in when it does
    -- not exist yet) and lasts until the transaction ends; every statement
    -- below takes its snapshot after it (READ COMMITTED), so the second run
    -- sees the first one's rows.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(
        'mlpipe.predict_table ' OPERATOR(pg_catalog.||) coalesce(
            (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(tgt.qualified)),
            CASE WHEN pg_catalog.cardinality(pg_catalog.parse_ident(tgt.qualified)) OPERATOR(pg_catalog.=) 1
                 THEN pg_catalog.format('%I.%s', pg_catalog.current_schema(), tgt.qualified)
                 ELSE tgt.qualified END)));
    rel := pg_catalog.to_regclass(tgt.qualified);

    IF rel IS NOT NULL THEN
        PERFORM mlpipe._check_target(rel, key, key_type, mode);
        IF mode = 'incremental' THEN
            filt := pg_catalog.format(' WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE t.%I = src.%I AND t.model = %L AND t.version = %s)',
                           tgt.qualified, key, key, info.model, info.version);
        END IF;
    END IF;
    -- Rows are scored with the row form of predict (columns matched by name,
    -- stored preprocessing applied), or, for a model without preprocessing
    -- whose features are numeric columns of the source, with the float8[]
    -- form, which gives the same predictions without building a row value.
    -- prediction: the value, cluster or class index; label and proba for
    -- classification only.
    IF NOT mlpipe._has_preprocessing(mlpipe.artifact(ref)) THEN
        xexpr := mlpipe._feature_array_expr(info.features, source);
    END IF;
    -- src.*, not a bare src, which a source column named src would capture.
    xexpr := coalesce(xexpr, 'src.*');
    -- A classifier is scored once per row: the float8[] form through the
    -- _score_* functions, whose calls for one row share an evaluation (the
    -- whole projection stays in the parallel workers); the row form with
    -- predict and predict_proba in a subquery (OFFSET 0 keeps the planner
    -- from pulling it up, which would copy predict into the label column).
    -- The SELECT is built as head (key, prediction and, for a classifier,
    -- label and proba), the constant columns, and the FROM clause: a new
    -- table gets only the head's columns from CREATE TABLE AS and the others
    -- as added columns (below).
    IF info.task = 'classification' THEN
        IF xexpr <> 'src.*' THEN
            head := pg_catalog.format('SELECT src.%1$I, mlpipe._score_class(%2$L, %3$s) AS prediction, '
                           'mlpipe._score_label(%2$L, %3$s) AS label, mlpipe._score_proba(%2$L, %3$s) AS proba',
                           key, ref, xexpr);
            from_sql := pg_catalog.format(' FROM %s AS src%s', src_sql, filt);
        ELSE
            head := pg_catalog.format('SELECT mlpipe_s.%1$I, mlpipe_s.mlpipe_p AS prediction, '
                           '(%2$L::text[])[mlpipe_s.mlpipe_p::int + 1] AS label, mlpipe_s.mlpipe_pb AS proba',
                           key, info.classes);
            from_sql := pg_catalog.format(' FROM (SELECT src.%1$I, mlpipe.predict(%2$L, src.*) AS mlpipe_p, '
                               'mlpipe.predict_proba(%2$L, src.*) AS mlpipe_pb '
                               'FROM %3$s AS src%4$s OFFSET 0) AS mlpipe_s',
                               key, ref, src_sql, filt);
        END IF;
        consts := '';
    ELSE
        head := pg_catalog.format('SELECT src.%1$I, mlpipe.predict(%2$L, %3$s) AS prediction', key, ref, xexpr);
        from_sql := pg_catalog.format(' FROM %s AS src%s', src_sql, filt);
        consts := ', NULL::text AS label, NULL::float8[] AS proba';
    END IF;
    consts := consts OPERATOR(pg_catalog.||) pg_catalog.format(', %L::text AS model, %s::int AS version, pg_catalog.now() AS scored_at',
                               info.model, info.version);
    -- Ensembles cost microseconds a row to score: for the scoring statement,
    -- make a parallel scan of the source attractive so that CREATE TABLE AS
    -- scores in parallel workers. A single tree or k-means scores faster
    -- than a worker hands rows back, so the caller's settings stay.
    old_ptc := pg_catalog.current_setting('parallel_tuple_cost');
    old_psc := pg_catalog.current_setting('parallel_setup_cost');
    IF info.algorithm IN ('gbt', 'random_forest') THEN
        PERFORM pg_catalog.set_config('parallel_tuple_cost', '0.001', true), pg_catalog.set_config('parallel_setup_cost', '10', true);
    END IF;

    -- On Citus, a new target for a distributed source is created
    -- distributed and co-located, then filled by the INSERT below.
    IF rel IS NULL THEN
        rel := mlpipe._citus_target(source, tgt.qualified, key, key_type, mode);
    END IF;
    IF rel IS NULL THEN
        -- A new table: bulk-written by CREATE TABLE AS with the per-row
        -- columns only; model, version and scored_at are the same on every
        -- row, so they are added afterwards with that value as default,
        -- which PostgreSQL stores once in the catalog instead of in each row
        -- (no rewrite; readers see the value on every row). Then indexed.
        EXECUTE pg_catalog.format('CREATE TABLE %s AS %s%s', tgt.qualified, head, from_sql);
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM pg_catalog.set_config('parallel_tuple_cost', old_ptc, true), pg_catalog.set_config('parallel_setup_cost', old_psc, true);
        EXECUTE pg_catalog.format('ALTER TABLE %s %s ADD COLUMN model text DEFAULT %L, ADD COLUMN version integer DEFAULT %s, '
                       'ADD COLUMN scored_at timestamptz DEFAULT pg_catalog.now()', tgt.qualified,
                       CASE WHEN info.task = 'classification' THEN ''
                            ELSE 'ADD COLUMN label text, ADD COLUMN proba double precision[],' END,
                       info.model, info.version);
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN model DROP DEFAULT, ALTER COLUMN version DROP DEFAULT',
                       tgt.qualified);
        EXECUTE pg_catalog.format('CREATE %s INDEX ON %s (%I)',
                       CASE WHEN mode IN ('upsert', 'replace') THEN 'UNIQUE' ELSE '' END, tgt.qualified, key);
        -- Readers read prediction tables (docs/security.md).
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO mlpipe_reader', tgt.qualified);
    ELSE
        IF mode = 'replace' THEN
            EXECUTE pg_catalog.format('DELETE FROM %s', tgt.qualified);
        END IF;
        EXECUTE pg_catalog.format('INSERT INTO %s (%I, prediction, label, proba, model, version, scored_at) %s%s%s%s',
                       tgt.qualified, key, head, consts, from_sql,
                       CASE WHEN mode = 'upsert' THEN pg_catalog.format(
                           ' ON CONFLICT (%I) DO UPDATE SET prediction = EXCLUDED.prediction, label = EXCLUDED.label, '
                           'proba = EXCLUDED.proba, model = EXCLUDED.model, version = EXCLUDED.version, '
                           'scored_at = EXCLUDED.scored_at', key) ELSE '' END);
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM pg_catalog.set_config('parallel_tuple_cost', old_ptc, true), pg_catalog.set_config('parallel_setup_cost', old_psc, true);
    END IF;

    -- Drift of the source against the training profile, on a sample.
    IF info.profile IS NOT NULL AND sample > 0 AND n > 0 THEN
        FOR d IN SELECT * FROM mlpipe._drift_figures(info.profile, source,
                     CASE WHEN n <= sample THEN 1 ELSE sample::float8 / n::float8 END) LOOP
            metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('psi:' OPERATOR(pg_catalog.||) d.feature, d.psi,
                                                     'null_rate:' OPERATOR(pg_catalog.||) d.feature, d.null_rate_now);
            IF mlpipe._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_thr) = 'drift' THEN
                drifted := drifted OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('feature', d.feature, 'psi', d.psi,
                                                         'null_rate_train', d.null_rate_train,
                                                         'null_rate_now', d.null_rate_now);
            END IF;
        END LOOP;
        metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('drifted_features', pg_catalog.jsonb_array_length(drifted));
    END IF;
    metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('rows_per_second',
        n::float8 / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - started)::float8, 1e-6));
    run := mlpipe._log_run('predict_table', info.model, info.version, info.algorithm, source,
        pg_catalog.jsonb_build_object('model_ref', model_ref, 'into', tgt.display, 'key', key, 'mode', mode, 'params', params),
        'succeeded', NULL, n, started, NULL, metrics, 'scoring');
    PERFORM mlpipe._notify('predictions_written', pg_catalog.jsonb_build_object('model', info.model, 'version', info.version,
        'run_id', run, 'rows', n, 'into', tgt.display));
    IF pg_catalog.jsonb_array_length(drifted) > 0 THEN
        PERFORM mlpipe._notify('drift_detected', pg_catalog.jsonb_build_object('model', info.model, 'version', info.version,
            'run_id', run, 'rows', n, 'into', tgt.display, 'threshold', threshold, 'features', drifted));
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) IS
    'Scores every row of a source into a table (append, replace, upsert or insert mode).';

COMMENT ON FUNCTION mlpipe._registry_changed() IS
    'Trigger function on the registry tables: invalidates the model references the predict functions keep per session and the plans that embedded an artifact.';

-- Where pg_cron can be called from here: raises 55000 with a HINT when it is
-- not preloaded, lives in another database, or is not created here.
-- SECURITY DEFINER because cron.database_name is a superuser-only setting
-- (it reveals only that database's name, in the HINT).
CREATE OR REPLACE FUNCTION mlpipe._cron_check(p_name text, p_cron text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := coalesce(current_setting('cron.database_name', true), 'postgres');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(string_to_array(current_setting('shared_preload_libraries'), ',')) l
                    WHERE btrim(l, ' "') = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not preloaded, so pipelines cannot be scheduled'
            USING ERRCODE = '55000',
                  HINT = 'Install pg_cron (Debian: postgresql-15-cron), add it to shared_preload_libraries, '
                         'set cron.database_name, restart, and CREATE EXTENSION pg_cron in that database.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db <> current_database() THEN
        RAISE EXCEPTION 'pg_cron lives in database "%", not in "%"', cron_db, current_database()
            USING ERRCODE = '55000',
                  HINT = CASE WHEN p_cron IS NULL THEN
                      format('In database %I run: SELECT cron.unschedule(%L);', cron_db, mlpipe._cron_job_name(p_name))
                  ELSE
                      format('In database %I run: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                             cron_db, mlpipe._cron_job_name(p_name), p_cron,
                             format('SELECT mlpipe.run_pipeline(%L)', p_name), current_database())
                  END;
    END IF;
    RAISE EXCEPTION 'pg_cron is preloaded but the extension is not created in database "%"', current_database()
        USING ERRCODE = '55000', HINT = 'Run CREATE EXTENSION pg_cron;';
END $$;
COMMENT ON FUNCTION mlpipe._cron_check(text, text) IS
    'Raises 55000 with a HINT unless pg_cron can be called from this database.';
REVOKE ALL ON FUNCTION mlpipe._cron_check(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cron_check(text, text) TO mlpipe_admin;

-- The pg_cron job name of a pipeline: 'mlpipe:<name>' when that fits in a
-- name (63 bytes), else its first 50 bytes (whole characters), '~' and 12
-- hex digits of md5(name), so that long names sharing a prefix get distinct
-- jobs. The job's command holds the full name, and pipelines.cron_job_id
-- its id, so a job maps back to its pipeline.
CREATE FUNCTION mlpipe._cron_job_name(p_name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    full_name text := 'mlpipe:' OPERATOR(pg_catalog.||) p_name;
    head      text;
BEGIN
    IF pg_catalog.octet_length(full_name) OPERATOR(pg_catalog.<=) 63 THEN
        RETURN full_name;
    END IF;
    head := pg_catalog."left"(full_name, 50);
    WHILE pg_catalog.octet_length(head) OPERATOR(pg_catalog.>) 50 LOOP
        head := pg_catalog."left"(head, -1);
    END LOOP;
    RETURN head OPERATOR(pg_catalog.||) '~' OPERATOR(pg_catalog.||) pg_catalog."left"(pg_catalog.md5(p_name), 12);
END $$;
COMMENT ON FUNCTION mlpipe._cron_job_name(text) IS
    'The pg_cron job name of a pipeline: mlpipe:<name>, or for a long name its prefix and an md5 suffix.';
REVOKE ALL ON FUNCTION mlpipe._cron_job_name(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cron_job_name(text) TO mlpipe_admin;

-- Removes every pg_cron job of a pipeline (its job name, or the job id the
-- pipeline row recorded, running exactly that pipeline's command) and
-- clears the recorded schedule. Returns whether there was a job.
-- SECURITY DEFINER (owned by the extension owner) because members of
-- mlpipe_admin have no access to schema cron, and a job another admin
-- scheduled belongs to that admin in pg_cron; it touches nothing but the
-- jobs of this pipeline.
CREATE FUNCTION mlpipe._cron_unschedule(p_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job   bigint;
    found_job boolean := false;
BEGIN
    PERFORM mlpipe._cron_check(p_name, NULL);
    FOR job IN EXECUTE 'SELECT j.jobid FROM cron.job j WHERE (j.jobname OPERATOR(pg_catalog.=) $1 '
                       'OR j.jobid OPERATOR(pg_catalog.=) $2) AND j.command OPERATOR(pg_catalog.=) $3'
        USING mlpipe._cron_job_name(p_name),
              (SELECT p.cron_job_id FROM mlpipe.pipelines p WHERE p.name = p_name),
              format('SELECT mlpipe.run_pipeline(%L)', p_name) LOOP
        EXECUTE 'SELECT cron.unschedule($1::bigint)' USING job;
        found_job := true;
    END LOOP;
    PERFORM mlpipe._pipeline_set_schedule(p_name, NULL, NULL);
    RETURN found_job;
END $$;
COMMENT ON FUNCTION mlpipe._cron_unschedule(text) IS
    'Removes the pg_cron jobs of a pipeline and clears its recorded schedule (for mlpipe_admin members).';
REVOKE ALL ON FUNCTION mlpipe._cron_unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cron_unschedule(text) TO mlpipe_admin;

-- Schedules a pipeline as a pg_cron job run by p_user (the role that called
-- schedule), replacing its earlier jobs, and records it. SECURITY DEFINER
-- for the same reason as _cron_unschedule; p_user must be a role the
-- session user may become (so nobody schedules as someone else) and a
-- member of mlpipe_admin.
CREATE FUNCTION mlpipe._cron_schedule(p_name text, p_cron text, p_user name) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    job bigint;
    err text;
BEGIN
    IF p_user IS NULL OR NOT pg_has_role(session_user, p_user, 'MEMBER')
       OR NOT pg_has_role(p_user, 'mlpipe_admin', 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" cannot schedule pipelines as role "%"', session_user, p_user
            USING ERRCODE = '42501', HINT = 'Call mlpipe.schedule as a member of mlpipe_admin.';
    END IF;
    PERFORM mlpipe._cron_check(p_name, p_cron);
    PERFORM mlpipe._cron_unschedule(p_name);
    BEGIN
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4, $5)' INTO job
          USING mlpipe._cron_job_name(p_name), p_cron, format('SELECT mlpipe.run_pipeline(%L)', p_name),
                current_database()::text, p_user::text;
    EXCEPTION WHEN internal_error OR invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        IF err LIKE '%can not log in%' OR err LIKE '%cannot log in%' THEN
            -- pg_cron runs a job by logging in as its role
            RAISE EXCEPTION 'pg_cron cannot run pipeline "%" as role "%": %', p_name, p_user, err
                USING ERRCODE = '42501', HINT = 'Schedule as a role with LOGIN (a member of mlpipe_admin).';
        END IF;
        RAISE EXCEPTION 'invalid cron schedule "%" for pipeline "%": %', p_cron, p_name, err
            USING ERRCODE = '22023', HINT = 'Five fields (minute hour day month weekday), e.g. ''0 21 * * *''.';
    END;
    PERFORM mlpipe._pipeline_set_schedule(p_name, p_cron, job);
    RETURN job;
END $$;
COMMENT ON FUNCTION mlpipe._cron_schedule(text, text, name) IS
    'Schedules run_pipeline(name) as a pg_cron job run by the given admin role (for mlpipe_admin members).';
REVOKE ALL ON FUNCTION mlpipe._cron_schedule(text, text, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cron_schedule(text, text, name) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe._pipeline_set_schedule(p_name text, p_cron text, p_job bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mlpipe.pipelines SET schedule = p_cron, cron_job_id = p_job WHERE name = p_name
$$;
COMMENT ON FUNCTION mlpipe._pipeline_set_schedule(text, text, bigint) IS
    'Records a pipeline''s cron schedule and pg_cron job id.';
REVOKE ALL ON FUNCTION mlpipe._pipeline_set_schedule(text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_set_schedule(text, text, bigint) TO mlpipe_admin;

-- Schedules a pipeline with pg_cron (job name: _cron_job_name) running
-- SELECT mlpipe.run_pipeline('<name>') as the calling role. Scheduling
-- again replaces the schedule. Returns pg_cron's job id.
CREATE OR REPLACE FUNCTION mlpipe.schedule(name text, cron text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p_name text := name;
    p_cron text := cron;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines pl WHERE pl.name = p_name) THEN
        PERFORM mlpipe._pipeline_unknown(p_name);
    END IF;
    IF p_cron IS NULL OR btrim(p_cron) = '' THEN
        RAISE EXCEPTION 'cron schedule is empty'
            USING ERRCODE = '22023', HINT = 'For example ''0 21 * * *'' (daily at 21:00) or ''* * * * *''.';
    END IF;
    RETURN mlpipe._cron_schedule(p_name, p_cron, current_user);
END $$;
COMMENT ON FUNCTION mlpipe.schedule(text, text) IS
    'Schedules run_pipeline(name) as a pg_cron job (mlpipe:<name>, hash-suffixed when long), replacing an earlier one.';
REVOKE ALL ON FUNCTION mlpipe.schedule(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.schedule(text, text) TO mlpipe_admin;

-- Removes the pipeline's pg_cron job. Returns whether there was one.
CREATE OR REPLACE FUNCTION mlpipe.unschedule(name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    p_name text := name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mlpipe.pipelines pl WHERE pl.name = p_name) THEN
        PERFORM mlpipe._pipeline_unknown(p_name);
    END IF;
    RETURN mlpipe._cron_unschedule(p_name);
END $$;
COMMENT ON FUNCTION mlpipe.unschedule(text) IS 'Removes the pg_cron job of a pipeline.';
REVOKE ALL ON FUNCTION mlpipe.unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.unschedule(text) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe._eval_input(p_features text[], p_array boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text;
    parts text[] := '{}';
    m text[];
BEGIN
    IF NOT p_array AND pg_catalog.to_regprocedure('mlpipe.predict_label(bytea,record)') IS NOT NULL THEN
        RETURN 's.*';
    END IF;
    FOREACH f IN ARRAY p_features LOOP
        m := pg_catalog.regexp_match(f, '^(.*)\[([0-9]+)\]$');
        parts := parts || CASE WHEN m IS NULL THEN pg_catalog.format('s.%I', f)
                               ELSE pg_catalog.format('(s.%I)[%s]', m[1], m[2]) END;
    END LOOP;
    RETURN 'ARRAY[' || pg_catalog.array_to_string(parts, ', ') || ']::float8[]';
END $$;
COMMENT ON FUNCTION mlpipe._eval_input(text[], boolean) IS
    'The SQL of the scoring argument for a source row: the row itself or the float8[] of its features.';
REVOKE ALL ON FUNCTION mlpipe._eval_input(text[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._eval_input(text[], boolean) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._eval_metrics(p_artifact bytea, p_task text, p_features text[],
    p_classes text[], p_target text, p_from text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    x   text := mlpipe._eval_input(p_features);
    res jsonb;
BEGIN
    IF p_task = 'classification' THEN
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.jsonb_build_object(
                'accuracy', mlpipe.accuracy(y, p), 'precision_macro', mlpipe.precision_macro(y, p),
                'recall_macro', mlpipe.recall_macro(y, p), 'f1_macro', mlpipe.f1_macro(y, p),
                'f1_weighted', mlpipe.f1_weighted(y, p), 'log_loss', mlpipe.log_loss(y, pr, $2),
                'roc_auc', mlpipe.roc_auc(y, pr, $2), 'confusion_matrix', mlpipe.confusion_matrix(y, p),
                'rows', pg_catalog.count(*))
              FROM (SELECT (s.%1$I)::text AS y, mlpipe.predict_label($1, %2$s) AS p,
                           mlpipe.predict_proba($1, %2$s) AS pr
                      FROM %3$s s WHERE s.%1$I IS NOT NULL) q$q$, p_target, x, p_from)
            INTO res USING p_artifact, p_classes;
    ELSIF p_task = 'regression' THEN
        EXECUTE pg_catalog.format($q$
            SELECT pg_catalog.jsonb_build_object('rmse', mlpipe.rmse(y, p), 'mae', mlpipe.mae(y, p),
                                      'r2', mlpipe.r2(y, p), 'mape', mlpipe.mape(y, p), 'rows', pg_catalog.count(*))
              FROM (SELECT (s.%1$I)::float8 AS y, mlpipe.predict($1, %2$s) AS p
                      FROM %3$s s WHERE s.%1$I IS NOT NULL) q$q$, p_target, x, p_from)
            INTO res USING p_artifact;
    ELSE
        -- Clustering: the clusters the model assigns, scored on the raw
        -- features; silhouette (O(n^2)) on at most 10,000 rows picked by a
        -- hash of the row, so the figure is reproducible.
        EXECUTE pg_catalog.format($q$
            WITH pts AS MATERIALIZED (
                SELECT %1$s AS x, mlpipe.predict($1, %2$s)::int AS c, pg_catalog.md5(ROW(s.*)::text) AS h FROM %3$s s)
            SELECT pg_catalog.jsonb_build_object(
                'silhouette', (SELECT mlpipe.silhouette(x, c) FROM
                                 (SELECT x, c FROM pts ORDER BY h LIMIT 10000) t),
                'calinski_harabasz', mlpipe.calinski_harabasz(x, c),
                'davies_bouldin', mlpipe.davies_bouldin(x, c), 'rows', pg_catalog.count(*))
              FROM pts$q$, mlpipe._eval_input(p_features, true), x, p_from)
            INTO res USING p_artifact;
    END IF;
    IF (res->>'rows'::text)::bigint = 0 THEN
        RAISE EXCEPTION 'no rows to evaluate%', coalesce(': the source has no row with a non-NULL "' OPERATOR(pg_catalog.||) p_target OPERATOR(pg_catalog.||) '"', '')
            USING ERRCODE = '22000';
    END IF;
    RETURN res;
END $$;
COMMENT ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) IS
    'Scores a FROM item with an artifact and returns the metrics of the task as jsonb.';
REVOKE ALL ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._cross_validate(p_algorithm text, p_source text, p_target text,
    p_features text[], p_params jsonb, p_folds int, p_parent bigint, p_kind text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started   timestamptz := pg_catalog.clock_timestamp();
    fstart    timestamptz;
    src       text;
    ttype     text;
    task      text;
    stratify  boolean;
    n         bigint;
    seed      text;
    fparams   jsonb;
    fit       mlpipe.fit_result;
    fm        jsonb;
    folds_out jsonb := '[]';
    mean      jsonb;
    std       jsonb;
    parent    bigint;
    i         int;
    hashed    text := 's.*';
BEGIN
    IF p_algorithm IS NULL OR p_source IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN p_algorithm IS NULL THEN 'algorithm' ELSE 'source' END
            USING ERRCODE = '22004';
    END IF;
    IF p_target IS NULL OR p_algorithm IN ('kmeans', 'minibatch_kmeans') THEN
        RAISE EXCEPTION 'cross-validation needs a supervised algorithm and a target'
            USING ERRCODE = '22023',
                  HINT = 'Clustering has no held-out truth: compare k-means models by the silhouette that mlpipe.train records.';
    END IF;
    IF p_folds IS NULL OR p_folds < 2 THEN
        RAISE EXCEPTION 'folds = % must be at least 2', coalesce(p_folds::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF pg_catalog.jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', pg_catalog.jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    src := mlpipe._eval_from(p_source);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*), pg_catalog.format_type(pg_catalog.min(pg_catalog.pg_typeof(s.%1$I)::oid), NULL)
                                 FROM %2$s s WHERE s.%1$I IS NOT NULL', p_target, src)
        INTO n, ttype;
    IF p_folds > n THEN
        RAISE EXCEPTION 'folds = % is more than the % rows with a non-NULL "%"', p_folds, n, p_target
            USING ERRCODE = '22023', HINT = 'Use fewer folds.';
    END IF;
    -- Stratify as training decides the task: text-like and boolean targets,
    -- integers with at most 20 distinct values, or params.task.
    IF p_params ? 'task'::text THEN
        stratify := p_params->>'task'::text = 'classification';
    ELSIF ttype IN ('smallint', 'integer', 'bigint') THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(DISTINCT s.%1$I) <= 20 FROM %2$s s', p_target, src) INTO stratify;
    ELSE
        stratify := ttype NOT IN ('real', 'double precision', 'numeric');
    END IF;
    -- Folds: rows ordered by a hash of (seed, row), by class first when
    -- stratified, dealt round-robin. Identical rows are interchangeable, so
    -- the assignment is reproducible. With features given, the hash covers
    -- only the feature columns and the target, so that other columns of the
    -- source (whatever they are called) do not change the folds.
    seed := coalesce(p_params->>'seed'::text, '0');
    IF p_features IS NOT NULL THEN
        hashed := (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', u.c), ', ' ORDER BY u.o)
                     FROM (SELECT v.c, pg_catalog.min(v.o) AS o
                             FROM pg_catalog.unnest(pg_catalog.array_append(
                                      ARRAY(SELECT pg_catalog.regexp_replace(f, '\[[0-9]+\]$', '')
                                              FROM pg_catalog.unnest(p_features) f), p_target)) WITH ORDINALITY v(c, o)
                            GROUP BY v.c) u);
    END IF;
    IF pg_catalog.to_regclass('pg_temp._mlpipe_cv_folds') IS NOT NULL THEN
        DROP TABLE pg_temp._mlpipe_cv_folds;
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE _mlpipe_cv_folds ON COMMIT DROP AS
         SELECT s.*, ((pg_catalog.row_number() OVER (ORDER BY %1$s pg_catalog.md5($1 OPERATOR(pg_catalog.||) ROW(%5$s)::text)) - 1) %% %2$s::bigint)::int
                AS _mlpipe_fold
           FROM %3$s s WHERE s.%4$I IS NOT NULL',
        CASE WHEN stratify THEN pg_catalog.format('s.%I,', p_target) ELSE '' END, p_folds, src, p_target, hashed)
        USING seed;
    fparams := (p_params - 'test_size'::text - 'split'::text) OPERATOR(pg_catalog.||) '{"test_size": 0}';
    IF p_features IS NULL THEN
        fparams := fparams OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('exclude',
            CASE WHEN pg_catalog.jsonb_typeof(p_params->'exclude'::text) = 'array' THEN p_params->'exclude'::text ELSE '[]' END
            OPERATOR(pg_catalog.||) '["_mlpipe_fold"]');
    END IF;
    parent := mlpipe._log_run(p_kind, NULL, NULL, p_algorithm, p_source,
        pg_catalog.jsonb_build_object('params', p_params, 'folds', p_folds, 'target', p_target,
                           'features', pg_catalog.to_jsonb(p_features), 'stratified', stratify),
        'running', NULL, n, started, p_parent, NULL, NULL);
    FOR i IN 0 .. p_folds - 1 LOOP
        fstart := pg_catalog.clock_timestamp();
        fit := mlpipe._fit(p_algorithm,
            pg_catalog.format('SELECT * FROM pg_temp._mlpipe_cv_folds WHERE _mlpipe_fold <> %s', i),
            p_target, p_features, fparams, NULL);
        task := fit.task;
        fm := mlpipe._eval_metrics(fit.artifact, fit.task, fit.feature_names, fit.classes, p_target,
            pg_catalog.format('(SELECT * FROM pg_temp._mlpipe_cv_folds WHERE _mlpipe_fold = %s)', i));
        fm := pg_catalog.jsonb_build_object('fold', i + 1, 'training_rows', (fit.info->>'training_rows'::text)::bigint) OPERATOR(pg_catalog.||) fm;
        PERFORM mlpipe._log_run('cv_fold', NULL, NULL, p_algorithm, p_source,
            pg_catalog.jsonb_build_object('params', p_params, 'fold', i + 1, 'folds', p_folds),
            'succeeded', NULL, (fm->>'rows'::text)::bigint, fstart, parent, fm - 'fold'::text - 'training_rows'::text, 'cv_fold');
        folds_out := folds_out OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(fm);
    END LOOP;
    DROP TABLE pg_temp._mlpipe_cv_folds;
    -- Mean and population standard deviation (numpy's default) of each metric.
    SELECT pg_catalog.jsonb_object_agg(key, a), pg_catalog.jsonb_object_agg(key, sd) INTO mean, std
      FROM (SELECT e.key, pg_catalog.avg((e.value)::text::float8) AS a, pg_catalog.stddev_pop((e.value)::text::float8) AS sd
              FROM pg_catalog.jsonb_array_elements(folds_out) f, pg_catalog.jsonb_each(f) e
             WHERE pg_catalog.jsonb_typeof(e.value) = 'number' AND e.key NOT IN ('fold', 'rows', 'training_rows')
             GROUP BY e.key) t;
    PERFORM mlpipe._eval_finish_run(parent, n, pg_catalog.jsonb_build_object('task', task), mean, 'cv_mean', std, 'cv_std');
    RETURN pg_catalog.jsonb_build_object('task', task, 'folds', folds_out, 'mean', mean, 'std', std,
                              'rows', n, 'run_id', parent);
END $$;
COMMENT ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) IS
    'k-fold cross-validation behind cross_validate and each search trial.';
REVOKE ALL ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._log_run(
    p_kind text, p_model text, p_version int, p_algorithm text, p_source text,
    p_params jsonb, p_status text, p_error text, p_rows bigint, p_started timestamptz,
    p_parent bigint DEFAULT NULL, p_metrics jsonb DEFAULT NULL, p_split text DEFAULT 'test')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_run bigint;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('evaluate', 'predict_table', 'drift', 'cross_validate', 'cv_fold', 'search',
                                        'search_trial', 'pipeline_step', 'prune', 'drop_model')
       OR (p_kind IN ('pipeline_step', 'prune', 'drop_model')
           AND NOT pg_has_role(session_user, 'mlpipe_admin', 'MEMBER')) THEN
        RAISE EXCEPTION 'mlpipe._log_run does not write runs of kind % for role %',
                        coalesce(quote_literal(p_kind), 'NULL'), session_user
            USING ERRCODE = '42501',
                  HINT = 'Training runs are written by mlpipe.train only; evaluation runs by evaluate, predict_table, drift, cross_validate and search.';
    END IF;
    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, error, rows,
                             started_at, finished_at, seconds, created_by, parent_run_id)
    VALUES (p_kind, p_model, p_version, p_algorithm, p_source, coalesce(p_params, '{}'),
            p_status, p_error, p_rows, coalesce(p_started, clock_timestamp()), clock_timestamp(),
            extract(epoch FROM clock_timestamp() - coalesce(p_started, clock_timestamp())),
            session_user, p_parent)
    RETURNING run_id INTO v_run;
    IF p_metrics IS NOT NULL AND jsonb_typeof(p_metrics) = 'object' THEN
        INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
        SELECT v_run, p_model, p_version, coalesce(p_split, 'test'), e.key, (e.value)::text::float8
          FROM jsonb_each(p_metrics) e WHERE jsonb_typeof(e.value) = 'number';
    END IF;
    RETURN v_run;
END $$;
COMMENT ON FUNCTION mlpipe._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) IS
    'Records a finished run and its numeric metrics (the one writer of runs rows outside training).';
REVOKE ALL ON FUNCTION mlpipe._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._log_run(text, text, int, text, text, jsonb, text, text, bigint, timestamptz, bigint, jsonb, text) TO mlpipe_trainer;

ALTER FUNCTION mlpipe._drift_status(psi double precision, null_train double precision, null_now double precision, threshold double precision, null_threshold double precision) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe._edges(double precision[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe._eval_input(p_features text[], p_array boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe._main_metric(task text, OUT metric text, OUT higher_is_better boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe._parse_into(p_into text, OUT qualified text, OUT display text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe._pipeline_texts(p jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe._search_candidates(p_space jsonb, p_strategy text, p_trials integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe.drop_pipeline(name text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe.export(model_ref text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe.feature_importance(model_ref text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION mlpipe.version() SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION mlpipe._as_of_source(p_source text, p_params jsonb, OUT sql text, OUT lineage jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    col   text := p_params->>'as_of_column'::text;
    ts    timestamptz;
    iso   text;
    ctype regtype;
BEGIN
    IF (p_params ? 'as_of'::text) <> (p_params ? 'as_of_column'::text) THEN
        RAISE EXCEPTION 'params.as_of and params.as_of_column go together'
            USING ERRCODE = '22023',
                  HINT = 'Give both, e.g. {"as_of": "2024-03-05 00:00+00", "as_of_column": "updated_at"}.';
    END IF;
    IF pg_catalog.jsonb_typeof(p_params->'as_of'::text) <> 'string' THEN
        RAISE EXCEPTION 'params.as_of must be a timestamp string, not %', pg_catalog.jsonb_typeof(p_params->'as_of'::text)
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_typeof(p_params->'as_of_column'::text) <> 'string' THEN
        RAISE EXCEPTION 'params.as_of_column must be a column name (string)' USING ERRCODE = '22023';
    END IF;
    BEGIN
        ts := (p_params->>'as_of'::text)::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_parameter_value THEN
        RAISE EXCEPTION 'params.as_of "%" is not a valid timestamp', p_params->>'as_of'::text
            USING ERRCODE = '22023', HINT = 'Use ISO 8601, e.g. "2024-03-05 00:00:00+00".';
    END;
    IF NOT pg_catalog.isfinite(ts) THEN
        RAISE EXCEPTION 'params.as_of must be a finite timestamp, not %', p_params->>'as_of'::text
            USING ERRCODE = '22023';
    END IF;
    SELECT s.type INTO ctype FROM mlpipe._source_columns(p_source) s WHERE s.name = col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'params.as_of_column names column "%", which is not in the source', col
            USING ERRCODE = '22023',
                  HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe._source_columns(p_source) s) OPERATOR(pg_catalog.||) '.';
    END IF;
    IF ctype NOT IN ('timestamp with time zone'::regtype, 'timestamp without time zone'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'params.as_of_column "%" has type %, not a date or timestamp', col, ctype
            USING ERRCODE = '22023';
    END IF;
    iso := pg_catalog.to_jsonb(ts) #>> '{}'::text[];
    sql := pg_catalog.format('SELECT * FROM (%s) AS mlpipe_as_of WHERE %I <= %L::timestamptz',
                  mlpipe._source_sql(p_source), col, iso);
    lineage := pg_catalog.jsonb_build_object('as_of', iso, 'as_of_column', col);
END $$;
COMMENT ON FUNCTION mlpipe._as_of_source(text, jsonb) IS
    'A source restricted by params.as_of / as_of_column, and the lineage to record.';
REVOKE ALL ON FUNCTION mlpipe._as_of_source(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._as_of_source(text, jsonb) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._check_data(p_source text, p_checks jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cols     jsonb;
    k        text;
    e        record;
    exprs    text[] := ARRAY['pg_catalog.count(*)::text'];
    what     text[] := ARRAY['rows'];
    res      text[];
    fails    text[] := '{}';
    n        bigint;
    i        int;
    lo       text;
    hi       text;
BEGIN
    IF pg_catalog.jsonb_typeof(p_checks) <> 'object' THEN
        RAISE EXCEPTION 'params.checks must be a JSON object, not %', pg_catalog.jsonb_typeof(p_checks)
            USING ERRCODE = '22023', HINT = 'For example {"min_rows": 1000, "not_null": ["a"]}.';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(p_checks) LOOP
        IF k NOT IN ('min_rows', 'not_null', 'ranges', 'allowed') THEN
            RAISE EXCEPTION 'unknown key "%" in params.checks', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: min_rows, not_null, ranges, allowed.';
        END IF;
    END LOOP;
    SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe._type_class(s.type)) INTO cols FROM mlpipe._source_columns(p_source) s;
    IF p_checks ? 'min_rows'::text AND (pg_catalog.jsonb_typeof(p_checks->'min_rows'::text) <> 'number'
        OR (p_checks->>'min_rows'::text)::numeric < 0::numeric OR (p_checks->>'min_rows'::text)::numeric <> pg_catalog.trunc((p_checks->>'min_rows'::text)::numeric)) THEN
        RAISE EXCEPTION 'params.checks.min_rows must be a non-negative integer' USING ERRCODE = '22023';
    END IF;
    IF p_checks ? 'not_null'::text THEN
        IF pg_catalog.jsonb_typeof(p_checks->'not_null'::text) <> 'array' THEN
            RAISE EXCEPTION 'params.checks.not_null must be an array of column names' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT v FROM pg_catalog.jsonb_array_elements(p_checks->'not_null'::text) v LOOP
            IF pg_catalog.jsonb_typeof(e.v) <> 'string' THEN
                RAISE EXCEPTION 'params.checks.not_null must be an array of column names' USING ERRCODE = '22023';
            END IF;
            IF NOT cols ? (e.v #>> '{}'::text[]) THEN
                RAISE EXCEPTION 'params.checks.not_null names column "%", which is not in the source', e.v #>> '{}'::text[]
                    USING ERRCODE = '22023';
            END IF;
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.count(*) FILTER (WHERE src.%I IS NULL)::text', e.v #>> '{}'::text[]);
            what := what OPERATOR(pg_catalog.||) pg_catalog.format('not_null: column "%s" has %%s NULL values', e.v #>> '{}'::text[]);
        END LOOP;
    END IF;
    IF p_checks ? 'ranges'::text THEN
        IF pg_catalog.jsonb_typeof(p_checks->'ranges'::text) <> 'object' THEN
            RAISE EXCEPTION 'params.checks.ranges must be an object of column: [min, max]' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT key, value FROM pg_catalog.jsonb_each(p_checks->'ranges'::text) LOOP
            IF NOT cols ? e.key THEN
                RAISE EXCEPTION 'params.checks.ranges names column "%", which is not in the source', e.key
                    USING ERRCODE = '22023';
            END IF;
            IF cols->>e.key <> 'numeric' THEN
                RAISE EXCEPTION 'params.checks.ranges: column "%" is not numeric', e.key USING ERRCODE = '22023';
            END IF;
            IF pg_catalog.jsonb_typeof(e.value) <> 'array' OR pg_catalog.jsonb_array_length(e.value) <> 2
               OR pg_catalog.jsonb_typeof(e.value->0) NOT IN ('number', 'null') OR pg_catalog.jsonb_typeof(e.value->1) NOT IN ('number', 'null')
               OR (pg_catalog.jsonb_typeof(e.value->0) = 'number' AND pg_catalog.jsonb_typeof(e.value->1) = 'number'
                   AND (e.value->>0)::float8 > (e.value->>1)::float8) THEN
                RAISE EXCEPTION 'params.checks.ranges."%" must be [min, max] with min <= max (null for no bound)', e.key
                    USING ERRCODE = '22023';
            END IF;
            lo := e.value->>0;
            hi := e.value->>1;
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.count(*) FILTER (WHERE (src.%I)::float8 < %s OR (src.%I)::float8 > %s)::text',
                                     e.key, coalesce(pg_catalog.quote_literal(lo) OPERATOR(pg_catalog.||) '::float8', '''-Infinity''::float8'),
                                     e.key, coalesce(pg_catalog.quote_literal(hi) OPERATOR(pg_catalog.||) '::float8', '''Infinity''::float8'));
            what := what OPERATOR(pg_catalog.||) pg_catalog.format('ranges: column "%s" has %%s values outside [%s, %s]', e.key,
                                   coalesce(lo, '-inf'), coalesce(hi, 'inf'));
        END LOOP;
    END IF;
    IF p_checks ? 'allowed'::text THEN
        IF pg_catalog.jsonb_typeof(p_checks->'allowed'::text) <> 'object' THEN
            RAISE EXCEPTION 'params.checks.allowed must be an object of column: [values]' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT key, value FROM pg_catalog.jsonb_each(p_checks->'allowed'::text) LOOP
            IF NOT cols ? e.key THEN
                RAISE EXCEPTION 'params.checks.allowed names column "%", which is not in the source', e.key
                    USING ERRCODE = '22023';
            END IF;
            IF pg_catalog.jsonb_typeof(e.value) <> 'array' OR pg_catalog.jsonb_array_length(e.value) = 0
               OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(e.value) v WHERE pg_catalog.jsonb_typeof(v) NOT IN ('string', 'number', 'boolean')) THEN
                RAISE EXCEPTION 'params.checks.allowed."%" must be a non-empty array of values', e.key
                    USING ERRCODE = '22023';
            END IF;
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('(pg_catalog.count(*) FILTER (WHERE (src.%1$I)::text <> ALL (%2$L::text[])) OPERATOR(pg_catalog.||) '' values outside the allowed ones (e.g. '' OPERATOR(pg_catalog.||) '
                                     OPERATOR(pg_catalog.||) 'coalesce(pg_catalog.quote_literal(pg_catalog.min((src.%1$I)::text) FILTER (WHERE (src.%1$I)::text <> ALL (%2$L::text[]))), ''-'') OPERATOR(pg_catalog.||) '')'')',
                                     e.key, ARRAY(SELECT v #>> '{}'::text[] FROM pg_catalog.jsonb_array_elements(e.value) v)::text);
            what := what OPERATOR(pg_catalog.||) pg_catalog.format('allowed: column "%s" has %%s', e.key);
        END LOOP;
    END IF;
    EXECUTE pg_catalog.format('SELECT ARRAY[%s] FROM (%s) AS src', pg_catalog.array_to_string(exprs, ', '), mlpipe._source_sql(p_source))
        INTO res;
    n := res[1]::bigint;
    IF p_checks ? 'min_rows'::text AND n::numeric < (p_checks->>'min_rows'::text)::numeric THEN
        fails := fails OPERATOR(pg_catalog.||) pg_catalog.format('min_rows: the source has %s rows, fewer than %s', n, p_checks->>'min_rows'::text);
    END IF;
    FOR i IN 2 .. pg_catalog.cardinality(res) LOOP
        IF pg_catalog.split_part(res[i], ' ', 1) <> '0' THEN
            fails := fails OPERATOR(pg_catalog.||) (pg_catalog.format(what[i], res[i]) OPERATOR(pg_catalog.||) CASE WHEN what[i] LIKE 'allowed:%' THEN '' ELSE pg_catalog.format(' (of %s rows)', n) END);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(fails) > 0 THEN
        RAISE EXCEPTION 'data checks failed: %', pg_catalog.array_to_string(fails, '; ')
            USING ERRCODE = '22000', HINT = 'Fix the source or relax params.checks.';
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION mlpipe._check_data(text, jsonb) IS
    'Runs the params.checks data checks over a source and raises 22000 naming every failing check.';
REVOKE ALL ON FUNCTION mlpipe._check_data(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._check_data(text, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._drift_figures(p_profile jsonb, p_source text, p_fraction float8 DEFAULT 1)
RETURNS TABLE (feature text, psi float8, null_rate_train float8, null_rate_now float8, rows_now bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    f      jsonb;
    cols   jsonb;
    exprs  text[] := '{}';
    ex     text;
    bin    text;
    cur    jsonb;
    i      int := 0;
    n      bigint;
    rel    regclass;
    from_  text;
BEGIN
    SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe._type_class(s.type)) INTO cols FROM mlpipe._source_columns(p_source) s;
    FOR f IN SELECT x FROM pg_catalog.jsonb_array_elements(p_profile->'features'::text) x LOOP
        IF NOT cols ? (f->>'column'::text) THEN
            RAISE EXCEPTION 'the source has no column "%" (feature "%" of the model)', f->>'column'::text, f->>'feature'::text
                USING ERRCODE = '42703',
                      HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) FROM pg_catalog.jsonb_object_keys(cols) k) OPERATOR(pg_catalog.||) '.';
        END IF;
        IF f->>'kind'::text = 'numeric' THEN
            IF cols->>(f->>'column'::text) NOT IN ('numeric', 'array') THEN
                RAISE EXCEPTION 'column "%" is % in the source but was numeric at training', f->>'column'::text, cols->>(f->>'column'::text)
                    USING ERRCODE = '22000';
            END IF;
            ex := CASE WHEN f->>'element'::text IS NULL THEN pg_catalog.format('(src.%I)::float8', f->>'column'::text)
                       ELSE pg_catalog.format('(src.%I)[%s]::float8', f->>'column'::text, (f->>'element'::text)::int) END;
            bin := pg_catalog.format('mlpipe._bin_of(%s, %L::float8[])', ex,
                          ARRAY(SELECT e::float8 FROM pg_catalog.jsonb_array_elements_text(f->'edges'::text) e)::text);
        ELSE
            ex := pg_catalog.format('(src.%I)::text', f->>'column'::text);
            bin := pg_catalog.format('coalesce(pg_catalog.array_position(%L::text[], %s), 0)', 
                          ARRAY(SELECT e FROM pg_catalog.jsonb_array_elements_text(f->'categories'::text) e)::text, ex);
        END IF;
        exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.jsonb_build_object(''n'', pg_catalog.count(%s), ''c'', pg_catalog.to_jsonb(mlpipe._bin_counts(%s, %s) FILTER (WHERE %s IS NOT NULL)))',
                                 ex, bin, pg_catalog.jsonb_array_length(f->'counts'::text), ex);
    END LOOP;
    IF pg_catalog.cardinality(exprs) = 0 THEN
        RETURN;
    END IF;
    from_ := pg_catalog.format('(%s) AS src', mlpipe._source_sql(p_source));
    IF p_fraction < 1::float8 THEN
        IF p_source !~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
            BEGIN
                rel := pg_catalog.to_regclass(p_source);
            EXCEPTION WHEN OTHERS THEN
                rel := NULL;
            END;
        END IF;
        IF rel IS NOT NULL AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) IN ('r', 'm', 'p') THEN
            from_ := pg_catalog.format('%s AS src TABLESAMPLE SYSTEM (%s)', rel, p_fraction * 100::float8);
        ELSE
            from_ := from_ OPERATOR(pg_catalog.||) pg_catalog.format(' WHERE pg_catalog.random() < %s::float8', p_fraction);
        END IF;
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.jsonb_build_object(''n'', pg_catalog.count(*), ''f'', pg_catalog.to_jsonb(ARRAY[%s]::jsonb[])) FROM %s',
                   pg_catalog.array_to_string(exprs, ', '), from_)
        INTO cur;
    n := (cur->>'n'::text)::bigint;
    IF n = 0 AND p_fraction < 1::float8 THEN
        RETURN;                 -- an empty sample: no figures
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'the source returned no rows' USING ERRCODE = '22000';
    END IF;
    FOR f IN SELECT x FROM pg_catalog.jsonb_array_elements(p_profile->'features'::text) x LOOP
        i := i + 1;
        feature := f->>'feature'::text;
        null_rate_train := (f->>'null_rate'::text)::float8;
        null_rate_now := CASE WHEN n > 0 THEN 1::float8 - (cur->'f'::text->(i - 1)->>'n'::text)::float8 / n::float8 END;
        rows_now := n;
        psi := NULL;
        IF pg_catalog.jsonb_typeof(cur->'f'::text->(i - 1)->'c'::text) = 'array' THEN
            SELECT pg_catalog.sum((greatest(c / sum_c, 1e-4) - greatest(t / sum_t, 1e-4))
                       * pg_catalog.ln(greatest(c / sum_c, 1e-4) / greatest(t / sum_t, 1e-4)))
              INTO psi
              FROM (SELECT t, c, pg_catalog.sum(t) OVER () AS sum_t, pg_catalog.sum(c) OVER () AS sum_c
                      FROM ROWS FROM (pg_catalog.unnest(ARRAY(SELECT x::float8 FROM pg_catalog.jsonb_array_elements_text(f->'counts'::text) x)),
                                      pg_catalog.unnest(ARRAY(SELECT x::float8 FROM pg_catalog.jsonb_array_elements_text(cur->'f'::text->(i - 1)->'c'::text) x))) u(t, c)) b
             WHERE sum_t > 0::float8 AND sum_c > 0::float8;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) IS
    'PSI and null rates of each profiled feature of a source against a profile.';
REVOKE ALL ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._eval_from(p_source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_source IS NULL OR pg_catalog.btrim(p_source) = '' THEN
        RAISE EXCEPTION 'source must not be empty' USING ERRCODE = '22023';
    END IF;
    IF p_source ~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
        RETURN '(' OPERATOR(pg_catalog.||) p_source OPERATOR(pg_catalog.||) E'\n)';
    END IF;
    RETURN p_source::regclass::text;
END $$;
COMMENT ON FUNCTION mlpipe._eval_from(text) IS
    'A source (table or view name, or a query) as a FROM item, resolved as the caller.';
REVOKE ALL ON FUNCTION mlpipe._eval_from(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._eval_from(text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._feature_array_expr(p_features text[], p_source text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cols  jsonb;
    types jsonb;
    f     text;
    c     text;
    parts text[] := '{}';
BEGIN
    SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe._type_class(s.type)), pg_catalog.jsonb_object_agg(s.name, s.type::text)
      INTO cols, types FROM mlpipe._source_columns(p_source) s;
    FOREACH f IN ARRAY p_features LOOP
        IF cols->>f = 'numeric' THEN
            parts := parts OPERATOR(pg_catalog.||) pg_catalog.format('(src.%I)::float8', f);
            CONTINUE;
        END IF;
        c := substring(f FROM '^(.*)\[[0-9]{1,6}\]$');
        IF c IS NULL OR cols->>c IS DISTINCT FROM 'array' THEN
            RETURN NULL;
        END IF;
        parts := parts OPERATOR(pg_catalog.||) pg_catalog.format('(src.%I)[%s]::float8', c, substring(f FROM '\[([0-9]{1,6})\]$'));
    END LOOP;
    -- Features x[1], ..., x[d] of one array column: pass the column as it is.
    c := substring(p_features[1] FROM '^(.*)\[1\]$');
    IF c IS NOT NULL AND cols->>c = 'array' AND p_features = ARRAY(
            SELECT pg_catalog.format('%s[%s]', c, g) FROM pg_catalog.generate_series(1, pg_catalog.cardinality(p_features)) g) THEN
        RETURN CASE WHEN types->>c = 'double precision[]' THEN pg_catalog.format('src.%I', c)
                    ELSE pg_catalog.format('(src.%I)::float8[]', c) END;
    END IF;
    RETURN 'ARRAY[' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(parts, ', ') OPERATOR(pg_catalog.||) ']';
END $$;
COMMENT ON FUNCTION mlpipe._feature_array_expr(text[], text) IS
    'The SQL of the float8[] a model without preprocessing scores, over the alias src.';
REVOKE ALL ON FUNCTION mlpipe._feature_array_expr(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._feature_array_expr(text[], text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._pipeline_features(step jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    groups  text[] := coalesce(mlpipe._pipeline_texts(step->'group_by'::text), '{}');
    vals    text[] := mlpipe._pipeline_texts(step->'values'::text);
    wanted  text[] := mlpipe._pipeline_texts(step->'stats'::text);
    period  text := step->>'period'::text;
    ts      text := step->>'ts'::text;
    into_t  text := mlpipe._pipeline_ident(step->>'into'::text);
    stats   text[];
    inner_c text[] := '{}';
    outer_c text[] := '{}';
    nkeys   int;
    g       text;
    v       text;
    s       text;
    i       int := 0;
    q       text;
    n       bigint;
BEGIN
    IF pg_catalog.to_regtype('mlpipe.ts_summary') IS NULL THEN
        RAISE EXCEPTION 'a features step needs mlpipe.ts_features, which this installation does not have'
            USING ERRCODE = '0A000', HINT = 'Update the extension: ALTER EXTENSION mlpipe UPDATE.';
    END IF;
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO stats
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = (SELECT t.typrelid FROM pg_catalog.pg_type t WHERE t.oid = 'mlpipe.ts_summary'::regtype)
       AND a.attnum > 0 AND NOT a.attisdropped
       AND a.atttypid IN ('float8'::regtype, 'float4'::regtype, 'int4'::regtype, 'int8'::regtype,
                          'int2'::regtype, 'numeric'::regtype);
    IF wanted IS NOT NULL THEN
        FOREACH s IN ARRAY wanted LOOP
            IF NOT s = ANY (stats) THEN
                RAISE EXCEPTION 'features step: unknown stat "%"', s
                    USING ERRCODE = '22023', HINT = 'Stats: ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(stats, ', ') OPERATOR(pg_catalog.||) '.';
            END IF;
        END LOOP;
        stats := wanted;
    END IF;
    FOREACH g IN ARRAY groups LOOP
        inner_c := inner_c OPERATOR(pg_catalog.||) pg_catalog.format('%I', g);
        outer_c := outer_c OPERATOR(pg_catalog.||) pg_catalog.format('%I', g);
    END LOOP;
    IF period IS NOT NULL THEN
        inner_c := inner_c OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.date_trunc(%L::text, %I::timestamptz) AS period_start', period, ts);
        outer_c := outer_c OPERATOR(pg_catalog.||) 'period_start'::text;
    END IF;
    nkeys := pg_catalog.cardinality(inner_c);
    FOREACH v IN ARRAY vals LOOP
        inner_c := inner_c OPERATOR(pg_catalog.||) pg_catalog.format('mlpipe.ts_features(%I::timestamptz, %I::float8) AS _f%s', ts, v, i);
        FOREACH s IN ARRAY stats LOOP
            outer_c := outer_c OPERATOR(pg_catalog.||) pg_catalog.format('(_f%s).%I::float8 AS %I', i, s, v OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s);
        END LOOP;
        i := i + 1;
    END LOOP;
    q := pg_catalog.format('SELECT %s FROM (SELECT %s FROM %s%s) AS f%s',
                pg_catalog.array_to_string(outer_c, ', '), pg_catalog.array_to_string(inner_c, ', '),
                mlpipe._pipeline_from(step->>'source'::text),
                CASE WHEN nkeys > 0 THEN ' GROUP BY ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.generate_series(1, nkeys)), ', ') ELSE '' END,
                CASE WHEN nkeys > 0 THEN ' ORDER BY ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.generate_series(1, nkeys)), ', ') ELSE '' END);
    IF coalesce(step->>'mode'::text, 'replace') = 'replace' AND pg_catalog.to_regclass(into_t) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE %s', into_t);
    END IF;
    IF pg_catalog.to_regclass(into_t) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %s AS %s', into_t, q);
    ELSE
        EXECUTE pg_catalog.format('INSERT INTO %s %s', into_t, q);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION mlpipe._pipeline_features(jsonb) IS
    'Runs a features step: ts_features per group (and period) written into a table.';
REVOKE ALL ON FUNCTION mlpipe._pipeline_features(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_features(jsonb) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe._pipeline_from(p_source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel regclass;
BEGIN
    IF p_source ~* '^[\s(]*(select|with|values|table)\M' THEN
        RETURN '(' OPERATOR(pg_catalog.||) pg_catalog.chr(10) OPERATOR(pg_catalog.||) p_source OPERATOR(pg_catalog.||) pg_catalog.chr(10) OPERATOR(pg_catalog.||) ') AS src';
    END IF;
    rel := pg_catalog.to_regclass(mlpipe._pipeline_ident(p_source));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation "%" does not exist', p_source USING ERRCODE = '42P01';
    END IF;
    RETURN rel::text OPERATOR(pg_catalog.||) ' AS src';
END $$;
COMMENT ON FUNCTION mlpipe._pipeline_from(text) IS
    'A pipeline source as a FROM item: a relation or a query in parentheses.';
REVOKE ALL ON FUNCTION mlpipe._pipeline_from(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_from(text) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe._pipeline_ident(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x), '.' ORDER BY o) FROM pg_catalog.unnest(pg_catalog.parse_ident(p_name)) WITH ORDINALITY AS u(x, o)
$$;
COMMENT ON FUNCTION mlpipe._pipeline_ident(text) IS
    'A [schema.]table name from a pipeline config, quoted for SQL.';
REVOKE ALL ON FUNCTION mlpipe._pipeline_ident(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_ident(text) TO mlpipe_admin;

REVOKE ALL ON FUNCTION mlpipe._pipeline_step(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_step(jsonb) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe._profile_compute(p_source text, p_model_features text[], p_features text[],
    p_target text, p_exclude jsonb, p_sample int, p_rows_estimate bigint)
RETURNS jsonb
-- The profile must not cost more memory than the fit it follows: with 28
-- features the statement's cost passed jit_above_cost, and loading LLVM plus
-- 28 sorts of work_mem each took the training backend from 40 to 150 MiB.
-- No JIT, and 1MB per sort (the rest spills to disk).
LANGUAGE plpgsql VOLATILE SET jit = off SET work_mem = '1MB' AS $$
DECLARE
    f       record;
    i       int := 0;
    sel     text[] := '{}';
    agg1    text[] := '{}';
    cats    text[] := '{}';
    agg2    text[] := '{}';
    outs    text[] := '{}';
    frac    float8;
    q       text;
    result  jsonb;
BEGIN
    IF p_sample IS NULL OR p_sample <= 0 THEN
        RETURN NULL;
    END IF;
    frac := CASE WHEN coalesce(p_rows_estimate, 0) <= p_sample THEN 1
                 ELSE p_sample::float8 / p_rows_estimate::float8 END;
    FOR f IN SELECT * FROM mlpipe._profile_plan(p_source, p_model_features, p_features, p_target, p_exclude) LOOP
        i := i + 1;
        EXIT WHEN i > 256;
        sel := sel OPERATOR(pg_catalog.||) pg_catalog.format('%s AS f%s', f.expr, i);
        agg1 := agg1 OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.count(f%s) AS n%s', i, i);
        IF f.kind = 'numeric' THEN
            agg1 := agg1 OPERATOR(pg_catalog.||) pg_catalog.format('mlpipe._edges(pg_catalog.percentile_disc(ARRAY[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1]) WITHIN GROUP (ORDER BY f%s)) AS e%s', i, i);
            agg2 := agg2 OPERATOR(pg_catalog.||) pg_catalog.format('mlpipe._bin_counts(mlpipe._bin_of(f%s, q.e%s), 2 * pg_catalog.cardinality(q.e%s) + 1) FILTER (WHERE f%s IS NOT NULL) AS h%s', i, i, i, i, i);
            outs := outs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.jsonb_build_object(''feature'', %L, ''kind'', ''numeric'', ''column'', %L, ''element'', %s, '
                                   '''nonnull'', q.n%s, ''null_rate'', CASE WHEN q.n > 0 THEN 1::float8 - q.n%s::float8 / q.n::float8 END, '
                                   '''edges'', pg_catalog.to_jsonb(q.e%s), ''counts'', pg_catalog.to_jsonb(coalesce(h.h%s, pg_catalog.array_fill(0::bigint, ARRAY[2 * pg_catalog.cardinality(q.e%s) + 1]))))',
                                   f.feature, f.col, coalesce(f.element::text, 'NULL'), i, i, i, i, i);
        ELSE
            cats := cats OPERATOR(pg_catalog.||) pg_catalog.format('(SELECT coalesce(pg_catalog.array_agg(v ORDER BY c DESC, v), ''{}'') FROM (SELECT f%s AS v, pg_catalog.count(*) AS c FROM s WHERE f%s IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20) t) AS c%s', i, i, i);
            agg2 := agg2 OPERATOR(pg_catalog.||) pg_catalog.format('mlpipe._bin_counts(coalesce(pg_catalog.array_position(k.c%s, f%s), 0), pg_catalog.cardinality(k.c%s) + 1) FILTER (WHERE f%s IS NOT NULL) AS h%s', i, i, i, i, i);
            outs := outs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.jsonb_build_object(''feature'', %L, ''kind'', ''categorical'', ''column'', %L, ''element'', NULL, '
                                   '''nonnull'', q.n%s, ''null_rate'', CASE WHEN q.n > 0 THEN 1::float8 - q.n%s::float8 / q.n::float8 END, '
                                   '''categories'', pg_catalog.to_jsonb(k.c%s), ''counts'', pg_catalog.to_jsonb(coalesce(h.h%s, ''{0}'')))',
                                   f.feature, f.col, i, i, i, i);
        END IF;
    END LOOP;
    IF i = 0 THEN
        RETURN pg_catalog.jsonb_build_object('rows', 0, 'sample', p_sample, 'features', '[]'::jsonb);
    END IF;
    q := pg_catalog.format('WITH s AS MATERIALIZED (SELECT %s FROM (%s) AS src%s), '
                'q AS (SELECT pg_catalog.count(*) AS n, %s FROM s), '
                'k AS (SELECT %s), '
                'h AS (SELECT %s FROM s, q, k) '
                'SELECT pg_catalog.jsonb_build_object(''rows'', q.n, ''sample'', %s, ''fraction'', %s, ''features'', pg_catalog.to_jsonb(ARRAY[%s]::jsonb[])) FROM q, k, h',
                pg_catalog.array_to_string(sel, ', '), mlpipe._source_sql(p_source),
                CASE WHEN frac < 1::float8 THEN pg_catalog.format(' WHERE pg_catalog.random() < %s::float8', frac) ELSE '' END,
                pg_catalog.array_to_string(agg1, ', '),
                CASE WHEN pg_catalog.cardinality(cats) > 0 THEN pg_catalog.array_to_string(cats, ', ') ELSE '1 AS none' END,
                pg_catalog.array_to_string(agg2, ', '), p_sample, frac, pg_catalog.array_to_string(outs, ', '));
    EXECUTE q INTO result;
    RETURN result;
END $$;
COMMENT ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) IS
    'Profiles a training source (bin edges and shares per feature) from one sampled scan.';
REVOKE ALL ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._profile_plan(p_source text, p_model_features text[], p_features text[],
                                     p_target text, p_exclude jsonb)
RETURNS TABLE (feature text, kind text, col text, element int, expr text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c record;
    f text;
BEGIN
    FOR c IN SELECT s.name, s.type, mlpipe._type_class(s.type) AS cls
               FROM mlpipe._source_columns(p_source) s ORDER BY s.ord LOOP
        IF p_features IS NOT NULL THEN
            CONTINUE WHEN NOT (c.name = ANY (p_features));
        ELSE
            CONTINUE WHEN c.name = p_target;
            CONTINUE WHEN p_exclude IS NOT NULL AND pg_catalog.jsonb_typeof(p_exclude) = 'array'
                          AND p_exclude ? c.name;
        END IF;
        IF c.cls = 'numeric' AND c.name = ANY (p_model_features) THEN
            RETURN QUERY SELECT c.name, 'numeric'::text, c.name, NULL::int,
                                pg_catalog.format('(src.%I)::float8', c.name);
        ELSIF c.cls = 'array' THEN
            FOR f IN SELECT m FROM pg_catalog.unnest(p_model_features) WITH ORDINALITY u(m, o)
                      WHERE left(m, pg_catalog.length(c.name) + 1) = c.name OPERATOR(pg_catalog.||) '['
                        AND pg_catalog.substr(m, pg_catalog.length(c.name) + 2) ~ '^[0-9]{1,6}\]$' ORDER BY o LOOP
                RETURN QUERY SELECT f, 'numeric'::text, c.name,
                    pg_catalog.rtrim(pg_catalog.substr(f, pg_catalog.length(c.name) + 2), ']')::int,
                    pg_catalog.format('(src.%I)[%s]::float8', c.name, pg_catalog.rtrim(pg_catalog.substr(f, pg_catalog.length(c.name) + 2), ']'));
            END LOOP;
        ELSIF c.cls = 'categorical' THEN
            RETURN QUERY SELECT c.name, 'categorical'::text, c.name, NULL::int,
                                pg_catalog.format('(src.%I)::text', c.name);
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) IS
    'The features to profile for a training source, one row per feature with its type class.';
REVOKE ALL ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._search(p_model text, p_algorithm text, p_source text, p_target text,
    p_features text[], p_space jsonb, p_strategy text, p_folds int, p_trials int, p_gate jsonb)
RETURNS mlpipe.train_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    run     bigint;
    cand    jsonb;
    cv      jsonb;
    main    record;
    val     float8;
    best    jsonb;
    best_v  float8;
    best_cv jsonb;
    trials  jsonb := '[]';
    n       int := 0;
    res     mlpipe.train_result;
BEGIN
    IF p_model IS NULL OR p_model = '' OR position('@' IN p_model) > 0 THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(p_model), 'NULL') USING ERRCODE = '22023';
    END IF;
    PERFORM mlpipe._search_candidates(p_space, p_strategy, p_trials) LIMIT 1;   -- validates the space first
    run := mlpipe._log_run('search', p_model, NULL, p_algorithm, p_source,
        pg_catalog.jsonb_build_object('space', p_space, 'strategy', p_strategy, 'folds', p_folds,
                           'trials', p_trials, 'target', p_target, 'features', pg_catalog.to_jsonb(p_features)),
        'running', NULL, NULL, started, NULL, NULL, NULL);
    FOR cand IN SELECT * FROM mlpipe._search_candidates(p_space, p_strategy, p_trials) LOOP
        cv := mlpipe._cross_validate(p_algorithm, p_source, p_target, p_features, cand, p_folds, run, 'search_trial');
        IF main IS NULL THEN
            SELECT * INTO main FROM mlpipe._main_metric(cv->>'task'::text);
        END IF;
        val := (cv->'mean'::text->>main.metric)::float8;
        n := n + 1;
        trials := trials OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('params', cand, 'run_id', cv->'run_id'::text,
                                                                 main.metric, val));
        IF val IS NOT NULL AND (best_v IS NULL OR (main.higher_is_better AND val > best_v)
                                OR (NOT main.higher_is_better AND val < best_v)) THEN
            best := cand;
            best_v := val;
            best_cv := cv;
        END IF;
    END LOOP;
    IF best IS NULL THEN
        RAISE EXCEPTION 'no trial of the search produced a % score', main.metric USING ERRCODE = '22000';
    END IF;
    res := mlpipe._train(p_model, p_algorithm, p_source, p_target, p_features, best, p_gate);
    PERFORM mlpipe._eval_finish_run(run, (best_cv->>'rows'::text)::bigint,
        pg_catalog.jsonb_build_object('best_params', best, 'main_metric', main.metric, 'trials_run', n,
                           'trial_results', trials, 'version', res.version, 'train_run_id', res.run_id),
        best_cv->'mean'::text, 'cv_mean', best_cv->'std'::text, 'cv_std');
    RETURN res;
END $$;
COMMENT ON FUNCTION mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) IS
    'The body of mlpipe.search: cross-validates every candidate, then trains the best on all rows.';
REVOKE ALL ON FUNCTION mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe.create_pipeline(name text, config text) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    checked jsonb;
BEGIN
    IF name IS NULL OR name = '' OR pg_catalog.length(name) > 200 OR name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid pipeline name %', coalesce(pg_catalog.quote_literal(name), 'NULL')
            USING ERRCODE = '22023', HINT = 'A pipeline name is 1 to 200 characters, without control characters.';
    END IF;
    IF config IS NULL THEN
        RAISE EXCEPTION 'pipeline config is NULL' USING ERRCODE = '22004';
    END IF;
    checked := mlpipe._pipeline_check(config, true);
    RETURN mlpipe._pipeline_store(name, checked);
END $$;
COMMENT ON FUNCTION mlpipe.create_pipeline(text, text) IS
    'Validates a pipeline config and stores it as a new version of the named pipeline (config as YAML or JSON text).';
REVOKE ALL ON FUNCTION mlpipe.create_pipeline(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.create_pipeline(text, text) TO mlpipe_admin;

CREATE OR REPLACE FUNCTION mlpipe.create_pipeline(name text, config jsonb) RETURNS int
LANGUAGE sql VOLATILE AS $$
    SELECT mlpipe.create_pipeline($1, $2::text)
$$;
COMMENT ON FUNCTION mlpipe.create_pipeline(text, jsonb) IS
    'Validates a pipeline config and stores it as a new version of the named pipeline (config as jsonb).';
REVOKE ALL ON FUNCTION mlpipe.create_pipeline(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.create_pipeline(text, jsonb) TO mlpipe_admin;

REVOKE ALL ON FUNCTION mlpipe.evaluate(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.evaluate(text, text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe.run_pipeline(name text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    p        record;
    run      bigint;
    prev     bigint;
    step     jsonb;
    res      jsonb;
    i        int := 0;
    started  timestamptz;
    err      text;
    state    text;
    step_run bigint;
    failed   boolean := false;
    p_name   text := name;
BEGIN
    SELECT pl.version, pl.config INTO p FROM mlpipe.pipelines pl WHERE pl.name = p_name;
    IF NOT FOUND THEN
        PERFORM mlpipe._pipeline_unknown(p_name);
    END IF;
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('mlpipe.pipeline_run:' OPERATOR(pg_catalog.||) p_name)) THEN
        RAISE EXCEPTION 'pipeline "%" is already running', p_name
            USING ERRCODE = '55P03', HINT = 'Wait for the running call to finish.';
    END IF;
    run := mlpipe._pipeline_run_begin(p_name, p.version,
               pg_catalog.jsonb_build_object('application_name', pg_catalog.current_setting('application_name')));
    prev := run;
    FOR step IN SELECT s FROM pg_catalog.jsonb_array_elements(p.config->'steps'::text) AS s LOOP
        started := pg_catalog.clock_timestamp();
        res := NULL;
        BEGIN
            res := mlpipe._pipeline_step(step);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            failed := true;
        END;
        step_run := mlpipe._log_run(
            'pipeline_step', coalesce(res->>'model'::text, step->>'model'::text), (res->>'version'::text)::int, step->>'kind'::text,
            coalesce(step->>'source'::text, step->>'model'::text),
            pg_catalog.jsonb_build_object('pipeline', p_name, 'step', i, 'config', step, 'result', res->'result'::text)
                OPERATOR(pg_catalog.||) CASE WHEN failed THEN pg_catalog.jsonb_build_object('sqlstate', state) ELSE '{}' END,
            CASE WHEN failed THEN 'failed' ELSE 'succeeded' END,
            CASE WHEN failed THEN pg_catalog.format('steps[%s] (%s): %s', i, step->>'kind'::text, err) END,
            (res->>'rows'::text)::bigint, started, run,
            CASE WHEN pg_catalog.jsonb_typeof(res->'metrics'::text) = 'object' THEN res->'metrics'::text END,
            step->>'kind'::text);
        PERFORM mlpipe._pipeline_adopt(step_run, prev);
        prev := step_run;
        IF failed THEN
            PERFORM mlpipe._pipeline_run_end(run, 'failed',
                pg_catalog.format('steps[%s] (%s) failed: %s', i, step->>'kind'::text, err), i);
            PERFORM mlpipe._notify('run_failed', pg_catalog.jsonb_build_object(
                'pipeline', p_name, 'run_id', run, 'step', i, 'kind', step->>'kind'::text,
                'sqlstate', state, 'error', err));
            RAISE WARNING 'pipeline "%" failed at steps[%] (%): %', p_name, i, step->>'kind'::text, err
                USING HINT = pg_catalog.format('See SELECT * FROM mlpipe.runs WHERE run_id = %s OR parent_run_id = %s.', run, run);
            RETURN run;
        END IF;
        i := i + 1;
    END LOOP;
    PERFORM mlpipe._pipeline_run_end(run, 'succeeded', NULL, i);
    RETURN run;
END $$;
COMMENT ON FUNCTION mlpipe.run_pipeline(text) IS
    'Runs the current version of a pipeline step by step, each step in a subtransaction logged as a run.';
REVOKE ALL ON FUNCTION mlpipe.run_pipeline(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.run_pipeline(text) TO mlpipe_admin;

REVOKE ALL ON FUNCTION mlpipe._as_of_source(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._as_of_source(text, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._check_data(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._check_data(text, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._cross_validate(text, text, text, text[], jsonb, int, bigint, text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._drift_figures(jsonb, text, float8) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._eval_from(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._eval_from(text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._eval_metrics(bytea, text, text[], text[], text, text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._feature_array_expr(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._feature_array_expr(text[], text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._pipeline_features(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_features(jsonb) TO mlpipe_admin;

REVOKE ALL ON FUNCTION mlpipe._pipeline_from(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_from(text) TO mlpipe_admin;

REVOKE ALL ON FUNCTION mlpipe._pipeline_step(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._pipeline_step(jsonb) TO mlpipe_admin;

REVOKE ALL ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._profile_compute(text, text[], text[], text, jsonb, int, bigint) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._profile_plan(text, text[], text[], text, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._search(text, text, text, text, text[], jsonb, text, int, int, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe.evaluate(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.evaluate(text, text) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb) TO mlpipe_trainer;

REVOKE ALL ON FUNCTION mlpipe.run_pipeline(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.run_pipeline(text) TO mlpipe_admin;

ALTER FUNCTION mlpipe.predict(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_class(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_label(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe._score_proba(text, float8[]) SUPPORT mlpipe._predict_support;

-- Import (issue #14): an XGBoost JSON model registered as a gbt version.
CREATE FUNCTION mlpipe._import_fit(doc jsonb, features text[], classes text[])
RETURNS mlpipe.fit_result
AS 'MODULE_PATHNAME', 'mlpipe_import_fit'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION mlpipe._import_fit(jsonb, text[], text[]) IS
    'Reads an XGBoost JSON model into a gbt artifact and returns it with a fit token for _register.';
REVOKE ALL ON FUNCTION mlpipe._import_fit(jsonb, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._import_fit(jsonb, text[], text[]) TO mlpipe_trainer;

CREATE FUNCTION mlpipe.import(
    model    text,
    doc      jsonb,
    features text[] DEFAULT NULL,
    classes  text[] DEFAULT NULL,
    gate     jsonb  DEFAULT NULL,
    origin   text   DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    fit     mlpipe.fit_result;
    res     mlpipe.train_result;
    label   text := coalesce(origin, 'imported XGBoost JSON');
BEGIN
    IF model IS NULL OR model = '' OR pg_catalog.strpos(model, '@') > 0
       OR pg_catalog.length(model) > 200 OR model OPERATOR(pg_catalog.~) '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(pg_catalog.quote_literal(model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    IF doc IS NULL THEN
        RAISE EXCEPTION 'doc must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(doc) = 'object' AND doc ? 'algorithm' AND NOT doc ? 'learner' THEN
        RAISE EXCEPTION 'doc looks like mlpipe.export output, which mlpipe.import does not read'
            USING ERRCODE = '22023',
                  HINT = 'mlpipe.import reads XGBoost JSON (Booster.save_model("m.json")); to copy an mlpipe model, use its artifact (mlpipe.artifact).';
    END IF;
    fit := mlpipe._import_fit(doc, features, classes);
    -- Lineage: imported, from what (fit.info is not part of the fit token but its row counts).
    fit.info := fit.info OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('imported',
        (fit.info->'imported') OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('origin', label));
    res := mlpipe._register(model, 'gbt', label, NULL,
        pg_catalog.jsonb_build_object('imported', 'xgboost_json'), gate, started, fit);
    RETURN res.version;
END $$;
COMMENT ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) IS
    'Registers an XGBoost JSON model (binary:logistic, multi:softprob/softmax, reg:squarederror) as a new gbt version of a model; returns the version.';
REVOKE ALL ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.import(text, jsonb, text[], text[], jsonb, text) TO mlpipe_trainer;

-- Explanations (issue #14): TreeSHAP for tree models, distance parts for k-means.
CREATE FUNCTION mlpipe.explain(model_ref text, features float8[], top_k int DEFAULT NULL, class text DEFAULT NULL)
RETURNS TABLE (feature text, value float8, contribution float8)
AS 'MODULE_PATHNAME', 'mlpipe_explain_array'
LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION mlpipe.explain(text, float8[], int, text) IS
    'Why a model scored a row (float8[]): one row per feature with its exact TreeSHAP contribution (k-means: its part of the squared distance), then a row with feature NULL holding the expected value (k-means: cluster and squared distance).';
REVOKE ALL ON FUNCTION mlpipe.explain(text, float8[], int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain(text, float8[], int, text) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.explain(model_ref text, "row" record, top_k int DEFAULT NULL, class text DEFAULT NULL)
RETURNS TABLE (feature text, value float8, contribution float8)
AS 'MODULE_PATHNAME', 'mlpipe_explain_row'
LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION mlpipe.explain(text, record, int, text) IS
    'Why a model scored a row (columns matched by name): one row per feature with its contribution, then the expected value (feature NULL).';
REVOKE ALL ON FUNCTION mlpipe.explain(text, record, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain(text, record, int, text) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.explain_values(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_explain_values'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.explain_values(text, float8[]) IS
    'Every output''s TreeSHAP contributions of a tree model in XGBoost''s pred_contribs layout: per output, one value per feature, then the expected value.';
REVOKE ALL ON FUNCTION mlpipe.explain_values(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain_values(text, float8[]) TO mlpipe_scorer;

CREATE OR REPLACE FUNCTION mlpipe._drift_status(psi float8, null_train float8, null_now float8,
                                     threshold float8, null_threshold float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN pg_catalog.abs(coalesce(null_now, 0) - coalesce(null_train, 0)) >= null_threshold THEN 'drift'
        WHEN psi IS NULL THEN 'no data'
        WHEN psi >= threshold THEN 'drift'
        WHEN psi >= threshold / 2 THEN 'warning'
        ELSE 'ok' END
$$;
COMMENT ON FUNCTION mlpipe._drift_status(float8, float8, float8, float8, float8) IS
    'The status (ok, drift, new_values, ...) of one feature''s drift figures.';
CREATE OR REPLACE FUNCTION mlpipe._eval_finish_run(p_run bigint, p_rows bigint, p_params jsonb,
    p_metrics jsonb, p_split text, p_metrics2 jsonb DEFAULT NULL, p_split2 text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    UPDATE mlpipe.runs u
       SET status = 'succeeded', rows = p_rows, params = u.params || coalesce(p_params, '{}'),
           finished_at = pg_catalog.clock_timestamp(), seconds = extract(epoch FROM pg_catalog.clock_timestamp() - u.started_at)
     WHERE u.run_id = p_run AND u.status = 'running' AND u.created_by = session_user
       AND u.kind IN ('cross_validate', 'search', 'search_trial')
    RETURNING u.model, u.version INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % is not a running evaluation run of %', p_run, session_user
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT p_run, r.model, r.version, m.split, e.key, (e.value)::text::float8
      FROM (VALUES (p_metrics, p_split), (p_metrics2, p_split2)) m(doc, split),
           pg_catalog.jsonb_each(m.doc) e
     WHERE m.doc IS NOT NULL AND pg_catalog.jsonb_typeof(m.doc) = 'object' AND pg_catalog.jsonb_typeof(e.value) = 'number';
END $$;
COMMENT ON FUNCTION mlpipe._eval_finish_run(bigint, bigint, jsonb, jsonb, text, jsonb, text) IS
    'Finishes a cross-validation or search run this session user started: status, rows, duration and metrics.';

CREATE OR REPLACE FUNCTION mlpipe._parse_into(p_into text, OUT qualified text, OUT display text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
BEGIN
    BEGIN
        parts := parse_ident(p_into);
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        parts := NULL;
    END;
    IF parts IS NULL OR pg_catalog.cardinality(parts) NOT IN (1, 2) OR '' = ANY (parts) THEN
        RAISE EXCEPTION 'into "%" is not a table name', p_into
            USING ERRCODE = '22023', HINT = 'Use table or schema.table; quote names with capitals or spaces.';
    END IF;
    qualified := (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.' ORDER BY o) FROM pg_catalog.unnest(parts) WITH ORDINALITY u(p, o));
    display := pg_catalog.array_to_string(parts, '.');
END $$;
COMMENT ON FUNCTION mlpipe._parse_into(text) IS
    'The qualified and display names of the into argument of predict_table.';

CREATE OR REPLACE FUNCTION mlpipe._pipeline_texts(p jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p IS NULL OR pg_catalog.jsonb_typeof(p) = 'null' THEN NULL
                ELSE ARRAY(SELECT pg_catalog.jsonb_array_elements_text(p)) END
$$;
COMMENT ON FUNCTION mlpipe._pipeline_texts(jsonb) IS
    'A JSON array of strings as text[] (NULL stays NULL).';

CREATE OR REPLACE FUNCTION mlpipe._check_target(p_rel regclass, p_key text, p_key_type regtype, p_mode text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    want   record;
    have   regtype;
    keynum int2;
BEGIN
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = p_rel) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', p_rel USING ERRCODE = '22000';
    END IF;
    FOR want IN SELECT * FROM (VALUES (p_key, p_key_type), ('prediction', 'double precision'::regtype),
                                      ('label', 'text'::regtype), ('proba', 'double precision[]'::regtype),
                                      ('model', 'text'::regtype), ('version', 'integer'::regtype),
                                      ('scored_at', 'timestamp with time zone'::regtype)) w(col, typ) LOOP
        SELECT a.atttypid::regtype INTO have FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_rel AND a.attname = want.col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table % has no column "%"', p_rel, want.col
                USING ERRCODE = '22000',
                      HINT = 'predict_table writes key, prediction, label, proba, model, version, scored_at; or let it create a new table.';
        END IF;
        IF have <> want.typ THEN
            RAISE EXCEPTION 'column "%" of table % is %, expected %', want.col, p_rel, have, want.typ
                USING ERRCODE = '22000';
        END IF;
    END LOOP;
    IF p_mode = 'upsert' THEN
        SELECT a.attnum INTO keynum FROM pg_catalog.pg_attribute a WHERE a.attrelid = p_rel AND a.attname = p_key;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = p_rel AND i.indisunique AND i.indisvalid
                          AND i.indnatts = 1 AND i.indkey[0] = keynum AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
            RAISE EXCEPTION 'mode upsert needs a unique index on %(%)', p_rel, p_key
                USING ERRCODE = '22000', HINT = format('CREATE UNIQUE INDEX ON %s (%I);', p_rel, p_key);
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe._check_target(regclass, text, regtype, text) IS
    'Checks that an existing predict_table target has the columns and unique index the mode needs.';

-- == issue 14: training_info, anomaly detection, choosing k, gbt warm start (helper kmx) ==

-- Per-iteration training figures (mlpipe.training_info).
CREATE TABLE mlpipe.training_iterations (
    model           text NOT NULL,
    version         int NOT NULL,
    iteration       int NOT NULL CHECK (iteration >= 0),
    training_loss   float8,
    validation_loss float8,
    elapsed_ms      float8,
    PRIMARY KEY (model, version, iteration),
    FOREIGN KEY (model, version) REFERENCES mlpipe.model_versions (model, version) ON DELETE CASCADE
);
COMMENT ON TABLE mlpipe.training_iterations IS 'One row per training iteration of a version (k-means: Lloyd iteration, mini-batch: epoch, gbt: boosting round), read by mlpipe.training_info.';
COMMENT ON COLUMN mlpipe.training_iterations.model IS 'The model of the version.';
COMMENT ON COLUMN mlpipe.training_iterations.version IS 'The version trained.';
COMMENT ON COLUMN mlpipe.training_iterations.iteration IS 'The iteration, from 0 (as BigQuery''s ML.TRAINING_INFO and XGBoost''s evals_result).';
COMMENT ON COLUMN mlpipe.training_iterations.training_loss IS 'k-means: the inertia of the iteration''s assignment (mini-batch: the smoothed batch inertia scaled to all rows); gbt: logloss, mlogloss or RMSE on the training rows.';
COMMENT ON COLUMN mlpipe.training_iterations.validation_loss IS 'gbt with validation rows (early_stopping_rounds): the loss on them; NULL otherwise.';
COMMENT ON COLUMN mlpipe.training_iterations.elapsed_ms IS 'Milliseconds since the algorithm started, at the end of the iteration (wall clock, not reproducible).';
REVOKE ALL ON mlpipe.training_iterations FROM PUBLIC;
GRANT SELECT ON mlpipe.training_iterations TO mlpipe_reader;
SELECT pg_catalog.pg_extension_config_dump('mlpipe.training_iterations', '');

-- _register also writes the training iterations.
CREATE OR REPLACE FUNCTION mlpipe._register(
    p_model text, p_algorithm text, p_source text, p_target text, p_params jsonb,
    p_gate jsonb, p_started timestamptz, p_fit mlpipe.fit_result)
RETURNS mlpipe.train_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_version int;
    v_run     bigint;
    verdict   jsonb;
    v_task    text := p_fit.task;
    ok        boolean;
    lin       jsonb;
    parent    record;
BEGIN
    IF NOT mlpipe._fit_claim(p_fit, p_algorithm) THEN
        RAISE EXCEPTION 'mlpipe._register accepts only a result of mlpipe._fit from the same transaction'
            USING ERRCODE = '42501',
                  HINT = 'Train with mlpipe.train(); a fit result cannot be edited or registered twice.';
    END IF;
    INSERT INTO mlpipe.models AS m (name, task, algorithm, created_by)
        VALUES (p_model, v_task, p_algorithm, session_user)
        ON CONFLICT (name) DO NOTHING;
    -- Locks the model row (serialises version numbers) and checks the task:
    -- a name keeps one meaning, so predict never changes what it returns.
    IF (SELECT m.task FROM mlpipe.models m WHERE m.name = p_model FOR UPDATE) <> v_task THEN
        RAISE EXCEPTION 'model "%" is a % model; this training is %', p_model,
            (SELECT m.task FROM mlpipe.models m WHERE m.name = p_model), v_task
            USING ERRCODE = '22023', HINT = 'Register it under another model name.';
    END IF;
    SELECT coalesce(max(v.version), 0) + 1 INTO v_version
      FROM mlpipe.model_versions v WHERE v.model = p_model;

    INSERT INTO mlpipe.runs (kind, model, version, algorithm, source, params, status, rows,
                             started_at, finished_at, seconds, created_by)
    VALUES ('train', p_model, v_version, p_algorithm, p_source, p_params, 'succeeded',
            (p_fit.info->>'training_rows')::bigint, p_started, clock_timestamp(),
            extract(epoch FROM clock_timestamp() - p_started), session_user)
    RETURNING runs.run_id INTO v_run;

    verdict := mlpipe._gate_verdict(p_model, v_task, p_fit.metrics, p_gate);
    ok := (verdict->>'passed')::boolean;

    -- Lineage: the warm-start reference resolved now, so it stays exact when
    -- the alias it named moves later.
    lin := coalesce(p_fit.info, '{}') - 'training_rows' - 'skipped_rows' - 'metrics_split' - 'trace';
    IF jsonb_typeof(lin->'warm_start') = 'string' THEN
        BEGIN
            SELECT r.model, r.version INTO parent FROM mlpipe.resolve(lin->>'warm_start') r;
            lin := lin || jsonb_build_object('parent',
                             jsonb_build_object('model', parent.model, 'version', parent.version));
        EXCEPTION WHEN undefined_object THEN
            NULL;   -- '(artifact)' or a reference gone meanwhile: keep the text only
        END;
    END IF;

    INSERT INTO mlpipe.model_versions (model, version, algorithm, task, params, features, target,
        classes, metrics, training_rows, skipped_rows, artifact, sha256, status, gate, run_id,
        source, mlpipe_version, lineage, created_by)
    VALUES (p_model, v_version, p_algorithm, v_task, p_params, p_fit.feature_names, p_target,
        p_fit.classes, p_fit.metrics, (p_fit.info->>'training_rows')::bigint,
        coalesce((p_fit.info->>'skipped_rows')::bigint, 0), p_fit.artifact,
        encode(sha256(p_fit.artifact), 'hex'), CASE WHEN ok THEN 'promoted' ELSE 'candidate' END,
        jsonb_build_object('policy', p_gate) || verdict, v_run, p_source, mlpipe.version(),
        lin, session_user);

    INSERT INTO mlpipe.metrics (run_id, model, version, split, metric, value)
    SELECT v_run, p_model, v_version, coalesce(p_fit.info->>'metrics_split', 'test'), e.key, (e.value)::text::float8
      FROM jsonb_each(p_fit.metrics) e WHERE jsonb_typeof(e.value) = 'number';

    -- The per-iteration figures (training_info), kept out of the artifact.
    INSERT INTO mlpipe.training_iterations (model, version, iteration, training_loss, validation_loss, elapsed_ms)
    SELECT p_model, v_version, o.i,
           (p_fit.info #>> ARRAY['trace', 'training_loss', o.i::text])::float8,
           (p_fit.info #>> ARRAY['trace', 'validation_loss', o.i::text])::float8,
           (p_fit.info #>> ARRAY['trace', 'elapsed_ms', o.i::text])::float8
      FROM generate_series(0, coalesce(jsonb_array_length(p_fit.info #> '{trace,training_loss}'), 0) - 1) o(i);

    PERFORM mlpipe._notify('version_registered',
        jsonb_build_object('model', p_model, 'version', v_version, 'alias', 'production',
                           'run_id', v_run, 'algorithm', p_algorithm, 'task', v_task,
                           'status', CASE WHEN ok THEN 'promoted' ELSE 'candidate' END));
    IF ok THEN
        PERFORM mlpipe._set_alias(p_model, 'production', v_version, 'promote', verdict->>'reason');
        PERFORM mlpipe._notify('promoted', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason'));
    ELSE
        PERFORM mlpipe._notify('gate_failed', jsonb_build_object('model', p_model, 'version', v_version,
            'alias', 'production', 'run_id', v_run, 'reason', verdict->>'reason',
            'metric', verdict->'metric', 'value', verdict->'value'));
    END IF;
    -- Guardrails, said once the version is stored (see docs/registry.md).
    IF NOT ok THEN
        RAISE NOTICE 'version % of model "%" did not pass its gate and stays a candidate: %',
            v_version, p_model, verdict->>'reason'
            USING HINT = pg_catalog.format('Production keeps its version; to use this one anyway: SELECT mlpipe.promote(%L, %s);',
                                           p_model, v_version);
    END IF;
    IF coalesce((p_fit.info->>'skipped_rows')::bigint, 0) * 5
       > coalesce((p_fit.info->>'skipped_rows')::bigint, 0) + coalesce((p_fit.info->>'training_rows')::bigint, 0)
         + coalesce((p_fit.info->>'test_rows')::bigint, 0) THEN
        RAISE WARNING 'training of "%" skipped % of its % rows (a NULL or non-finite value)', p_model,
            (p_fit.info->>'skipped_rows')::bigint,
            coalesce((p_fit.info->>'skipped_rows')::bigint, 0) + coalesce((p_fit.info->>'training_rows')::bigint, 0)
            + coalesce((p_fit.info->>'test_rows')::bigint, 0)
            USING HINT = 'More than a fifth of the data is left out: impute with params.preprocess, or fix the source.';
    END IF;
    RETURN ROW(p_model, v_version, ok, p_fit.metrics, v_run)::mlpipe.train_result;
END $$;
COMMENT ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) IS
    'Records a fitted model: model row, run, version, metrics, gate verdict and alias.';
REVOKE ALL ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe._register(text, text, text, text, jsonb, jsonb, timestamptz, mlpipe.fit_result) TO mlpipe_trainer;

-- One row per training iteration of a version, like BigQuery's
-- ML.TRAINING_INFO (k-means, mini-batch k-means and gbt record them).
CREATE FUNCTION mlpipe.training_info(model_ref text)
RETURNS TABLE (iteration int, training_loss float8, validation_loss float8, elapsed_ms float8)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    record;
    algo text;
BEGIN
    SELECT * INTO r FROM mlpipe.resolve(model_ref);
    SELECT v.algorithm INTO algo FROM mlpipe.model_versions v
     WHERE v.model = r.model AND v.version = r.version;
    IF algo NOT IN ('kmeans', 'minibatch_kmeans', 'gbt') THEN
        RAISE EXCEPTION 'model "%" version % is a % model, which has no training iterations', r.model, r.version, algo
            USING ERRCODE = '0A000', HINT = 'training_info covers kmeans, minibatch_kmeans and gbt models.';
    END IF;
    RETURN QUERY
        SELECT t.iteration, t.training_loss, t.validation_loss, t.elapsed_ms
          FROM mlpipe.training_iterations t
         WHERE t.model = r.model AND t.version = r.version
         ORDER BY t.iteration;
END $$;
COMMENT ON FUNCTION mlpipe.training_info(text) IS
    'One row per training iteration of a version (iteration from 0, training loss, validation loss, elapsed ms), like BigQuery''s ML.TRAINING_INFO.';
REVOKE ALL ON FUNCTION mlpipe.training_info(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.training_info(text) TO mlpipe_reader;

-- Anomaly detection (the functions as in sql/src/30-scoring.sql).
CREATE FUNCTION mlpipe.anomaly_score(model_ref text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(text, float8[]) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.anomaly_score(model_ref text, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(text, record) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.anomaly_score(model bytea, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(bytea, float8[]) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(bytea, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.anomaly_score(model bytea, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(bytea, record) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(bytea, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model_ref text, features float8[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(text, float8[]) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model_ref text, "row" record) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(text, record) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model bytea, features float8[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(bytea, float8[]) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(bytea, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model bytea, "row" record) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(bytea, record) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(bytea, record) TO mlpipe_scorer;

-- The anomaly name forms are rewritten to their artifact forms on Citus, as predict's.
ALTER FUNCTION mlpipe.anomaly_score(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.anomaly_score(text, record) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.is_anomaly(text, float8[]) SUPPORT mlpipe._predict_support;
ALTER FUNCTION mlpipe.is_anomaly(text, record) SUPPORT mlpipe._predict_support;
