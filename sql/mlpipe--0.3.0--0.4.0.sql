-- mlpipe 0.3.0 -> 0.4.0: comments on every function, aggregate, type, table
-- and column (psql \df+ / \d+ and pg_description show what each one is), and
-- mlpipe.version() says 0.4.0. No other catalog change: the full script
-- sql/mlpipe--0.4.0.sql (built from sql/src/) and this update give the same
-- catalog (test/sql/upgrade_catalog.sql).
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
-- == issue 12: first hour, registry story, BI views (helper R) ==
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
    SELECT array_agg(c.name ORDER BY c.ord) INTO ints
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
      INTO q FROM unnest(ints) n;
    EXECUTE q INTO hits;
    hits := array_remove(hits, NULL);
    IF cardinality(hits) > 0 THEN
        RAISE WARNING 'model "%": feature % looks like a row id (one consecutive integer a row)',
            p_model, array_to_string(hits, ', ')
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
    started  timestamptz := clock_timestamp();
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
       OR length(p_model) > 200 OR p_model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_params ? 'warm_start' THEN
        IF jsonb_typeof(p_params->'warm_start') <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start');
    END IF;
    IF p_params ? 'profile_sample' THEN
        IF jsonb_typeof(p_params->'profile_sample') <> 'number'
           OR (p_params->>'profile_sample')::numeric NOT BETWEEN 0 AND 10000000
           OR (p_params->>'profile_sample')::numeric <> trunc((p_params->>'profile_sample')::numeric) THEN
            RAISE EXCEPTION 'params.profile_sample must be an integer in 0..10000000 (0: no profile)'
                USING ERRCODE = '22023';
        END IF;
        sample := (p_params->>'profile_sample')::int;
    END IF;
    -- Time travel: train on the rows that existed at params.as_of.
    IF p_params ? 'as_of' OR p_params ? 'as_of_column' THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin || tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks' THEN
        lin := lin || jsonb_build_object('checked_rows', mlpipe._check_data(src, p_params->'checks'));
    END IF;
    fit := mlpipe._fit(p_algorithm, src, p_target, p_features,
                       mlpipe._fit_params(p_params, p_features, p_target), warm);
    prof := mlpipe._profile_compute(src, fit.feature_names, p_features, p_target,
        mlpipe._fit_params(p_params, p_features, p_target)->'exclude', sample,
        coalesce((fit.info->>'training_rows')::bigint, 0) + coalesce((fit.info->>'test_rows')::bigint, 0)
        + coalesce((fit.info->>'skipped_rows')::bigint, 0));
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := coalesce(fit.info, '{}') || lin;
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
    started timestamptz := clock_timestamp();
    metrics jsonb := '{}';
    drifted int := 0;
    n       bigint;
BEGIN
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF threshold IS NULL OR threshold <= 0 OR null_threshold IS NULL OR null_threshold <= 0 THEN
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
        metrics := metrics || jsonb_build_object('psi:' || feature, psi, 'null_rate:' || feature, null_rate_now);
        drifted := drifted + CASE WHEN status = 'drift' THEN 1 ELSE 0 END;
        RETURN NEXT;
    END LOOP;
    -- Logged as a run (kind 'drift', split 'drift') with the version, for
    -- the drift history (mlpipe.drift_history).
    PERFORM mlpipe._log_run('drift', info.model, info.version, info.algorithm, source,
        jsonb_build_object('model_ref', model_ref, 'threshold', threshold, 'null_threshold', null_threshold),
        'succeeded', NULL, n, started, NULL, metrics || jsonb_build_object('drifted_features', drifted), 'drift');
END $$;
COMMENT ON FUNCTION mlpipe.drift(text, text, float8, float8) IS
    'Population stability index and null rates of each feature of a source against the training profile of a version.';
REVOKE ALL ON FUNCTION mlpipe.drift(text, text, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drift(text, text, float8, float8) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe.evaluate(model_ref text, source text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
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
                           jsonb_build_object('model_ref', model_ref)
                           || jsonb_strip_nulls(jsonb_build_object('confusion_matrix', res->'confusion_matrix')),
                           'succeeded', NULL,
                           (res->>'rows')::bigint, started, NULL, res, 'evaluate');
    RETURN res || jsonb_build_object('model', m.model, 'version', m.version, 'run_id', run);
END $$;
COMMENT ON FUNCTION mlpipe.evaluate(text, text) IS
    'Scores a source with a registered version and returns the metrics of its task as jsonb.';
REVOKE ALL ON FUNCTION mlpipe.evaluate(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.evaluate(text, text) TO mlpipe_trainer;

CREATE OR REPLACE FUNCTION mlpipe._pipeline_step(step jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    kind    text := step->>'kind';
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
        RETURN jsonb_build_object('rows', n, 'result', jsonb_build_object('into', step->>'into', 'rows', n));
    WHEN 'train' THEN
        params := coalesce(step->'params', '{}');
        -- In a pipeline, k-means skips rows with a NULL feature unless told
        -- otherwise (as the trees do everywhere): a features step gives
        -- NULL statistics for short groups (kurtosis needs 4 readings).
        IF step->>'algorithm' IN ('kmeans', 'minibatch_kmeans') AND jsonb_typeof(params) = 'object'
           AND NOT params ? 'on_null' THEN
            params := params || '{"on_null": "skip"}';
        END IF;
        EXECUTE 'SELECT to_jsonb(t) FROM mlpipe.train($1, $2, $3, $4, $5, $6, $7) AS t'
           INTO r
          USING step->>'model', step->>'algorithm', step->>'source', step->>'target',
                mlpipe._pipeline_texts(step->'features'), params, step->'gate';
        SELECT v.skipped_rows, v.training_rows + v.skipped_rows INTO skipped, total
          FROM mlpipe.model_versions v WHERE v.model = r->>'model' AND v.version = (r->>'version')::int;
        IF skipped > 0 THEN
            RAISE NOTICE 'train step "%": % of % rows of % skipped (a NULL or non-finite feature)',
                r->>'model', skipped, total, step->>'source'
                USING HINT = CASE WHEN params->>'on_null' = 'skip' AND NOT coalesce(step->'params', '{}') ? 'on_null'
                    THEN 'In a pipeline, k-means defaults to params.on_null = ''skip''; give "on_null": "error" to fail instead.' END;
        END IF;
        RETURN jsonb_build_object('model', r->>'model', 'version', (r->>'version')::int, 'result', r);
    WHEN 'search' THEN
        EXECUTE 'SELECT to_jsonb(t) FROM mlpipe.search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS t'
           INTO r
          USING step->>'model', step->>'algorithm', step->>'source', step->>'target',
                mlpipe._pipeline_texts(step->'features'), step->'space',
                coalesce(step->>'strategy', 'grid'), coalesce((step->>'folds')::int, 5),
                coalesce((step->>'trials')::int, 20), step->'gate';
        RETURN jsonb_build_object('model', r->>'model', 'version', (r->>'version')::int, 'result', r);
    WHEN 'predict' THEN
        src := step->>'source';
        -- A k-means version trained with on_null = 'skip' (the pipeline
        -- default) scores only the rows it could have trained on: rows with
        -- a NULL feature are left out, and counted in a NOTICE.
        SELECT v.features INTO feats
          FROM mlpipe.resolve(step->>'model') r
          JOIN mlpipe.model_versions v ON v.model = r.model AND v.version = r.version
         WHERE v.algorithm IN ('kmeans', 'minibatch_kmeans') AND v.params->>'on_null' = 'skip';
        IF feats IS NOT NULL THEN
            cond := (SELECT string_agg(pg_catalog.format('src.%I IS NOT NULL', f), ' AND ') FROM unnest(feats) f);
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FILTER (WHERE NOT (%s)), pg_catalog.count(*) FROM %s',
                                      cond, mlpipe._pipeline_from(src)) INTO skipped, total;
            IF skipped > 0 THEN
                RAISE NOTICE 'predict step "%": % of % rows of % not scored (a NULL feature)',
                    step->>'model', skipped, total, src
                    USING HINT = 'The model was trained with params.on_null = ''skip''; give "on_null": "error" to its train step to fail instead.';
                src := pg_catalog.format('SELECT src.* FROM %s WHERE %s', mlpipe._pipeline_from(src), cond);
            END IF;
        END IF;
        EXECUTE 'SELECT mlpipe.predict_table($1, $2, $3, $4, $5)'
           INTO n
          USING step->>'model', src, step->>'into', step->>'key', coalesce(step->>'mode', 'append');
        RETURN jsonb_build_object('model', step->>'model', 'rows', n,
                                  'result', jsonb_build_object('into', step->>'into', 'rows', n));
    WHEN 'evaluate' THEN
        -- evaluate logs its own run and metrics (a child of the step's run):
        -- the step records the version only, so each metric is logged once.
        EXECUTE 'SELECT to_jsonb(mlpipe.evaluate($1, $2))' INTO r USING step->>'model', step->>'source';
        RETURN jsonb_build_object('model', r->>'model', 'version', (r->>'version')::int, 'result', r);
    WHEN 'drift' THEN
        -- drift logs its run with psi:<feature> and null_rate:<feature>
        -- metrics (the names predict_table uses); the step adds none.
        EXECUTE 'SELECT jsonb_agg(to_jsonb(d)) FROM mlpipe.drift($1, $2) AS d' INTO r
          USING step->>'model', step->>'source';
        SELECT v.model, v.version INTO ref FROM mlpipe.resolve(step->>'model') v;
        RETURN jsonb_build_object('model', ref.model, 'version', ref.version, 'result', r);
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

-- == issue 13: training profile sampled in C while the source is read (helper G) ==
CREATE OR REPLACE FUNCTION mlpipe._train(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, with the caller's search_path, grants and row-level security.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := clock_timestamp();
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
       OR length(p_model) > 200 OR p_model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_params ? 'warm_start' THEN
        IF jsonb_typeof(p_params->'warm_start') <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start');
    END IF;
    IF p_params ? 'profile_sample' THEN
        IF jsonb_typeof(p_params->'profile_sample') <> 'number'
           OR (p_params->>'profile_sample')::numeric NOT BETWEEN 0 AND 10000000
           OR (p_params->>'profile_sample')::numeric <> trunc((p_params->>'profile_sample')::numeric) THEN
            RAISE EXCEPTION 'params.profile_sample must be an integer in 0..10000000 (0: no profile)'
                USING ERRCODE = '22023';
        END IF;
        sample := (p_params->>'profile_sample')::int;
    END IF;
    -- Time travel: train on the rows that existed at params.as_of.
    IF p_params ? 'as_of' OR p_params ? 'as_of_column' THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin || tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks' THEN
        lin := lin || jsonb_build_object('checked_rows', mlpipe._check_data(src, p_params->'checks'));
    END IF;
    -- _fit samples the training profile while it reads the source (seeded
    -- by params.seed) and hands it back in fit.info.profile.
    fit := mlpipe._fit(p_algorithm, src, p_target, p_features,
                       (p_params - 'as_of' - 'as_of_column' - 'checks' - 'profile_sample')
                       || jsonb_build_object('profile_sample', sample), warm);
    prof := fit.info->'profile';
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := (coalesce(fit.info, '{}') - 'profile') || lin;
    res := mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    IF prof IS NOT NULL THEN
        PERFORM mlpipe._set_profile(res.model, res.version, prof);
    END IF;
    RETURN res;
END $$;

-- == issue 13: model references cached per session, invalidated by registry writes (helper G) ==
-- The name forms of predict keep resolved references in the backend across
-- statements (src/pg/predict.c). Every statement that writes a registry
-- table sends a relcache invalidation for it, so that every session looks
-- its references up again at its next statement.
CREATE FUNCTION mlpipe._registry_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'mlpipe_registry_changed'
LANGUAGE C;
COMMENT ON FUNCTION mlpipe._registry_changed() IS
    'Trigger function on the registry tables: invalidates the model references the predict functions keep per session.';
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

-- == merge: final bodies of functions that several sections above replace ==
CREATE OR REPLACE FUNCTION mlpipe._train(
    p_model text, p_algorithm text, p_source text, p_target text, p_features text[],
    p_params jsonb, p_gate jsonb)
RETURNS mlpipe.train_result
-- SECURITY INVOKER and no pinned search_path: the source is resolved and read
-- as the caller, with the caller's search_path, grants and row-level security.
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started  timestamptz := clock_timestamp();
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
       OR length(p_model) > 200 OR p_model ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid model name %', coalesce(quote_literal(p_model), 'NULL')
            USING ERRCODE = '22023', HINT = 'A model name is 1 to 200 characters, without "@" or control characters.';
    END IF;
    p_params := coalesce(p_params, '{}');
    IF jsonb_typeof(p_params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object, not %', jsonb_typeof(p_params) USING ERRCODE = '22023';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF p_params ? 'warm_start' THEN
        IF jsonb_typeof(p_params->'warm_start') <> 'string' THEN
            RAISE EXCEPTION 'params.warm_start must be a model reference such as ''sensors@3'''
                USING ERRCODE = '22023';
        END IF;
        warm := mlpipe.artifact(p_params->>'warm_start');
    END IF;
    IF p_params ? 'profile_sample' THEN
        IF jsonb_typeof(p_params->'profile_sample') <> 'number'
           OR (p_params->>'profile_sample')::numeric NOT BETWEEN 0 AND 10000000
           OR (p_params->>'profile_sample')::numeric <> trunc((p_params->>'profile_sample')::numeric) THEN
            RAISE EXCEPTION 'params.profile_sample must be an integer in 0..10000000 (0: no profile)'
                USING ERRCODE = '22023';
        END IF;
        sample := (p_params->>'profile_sample')::int;
    END IF;
    -- Time travel: train on the rows that existed at params.as_of.
    IF p_params ? 'as_of' OR p_params ? 'as_of_column' THEN
        SELECT a.sql, a.lineage INTO tt FROM mlpipe._as_of_source(p_source, p_params) a;
        src := tt.sql;
        lin := lin || tt.lineage;
    END IF;
    -- Data checks, before any training work.
    IF p_params ? 'checks' THEN
        lin := lin || jsonb_build_object('checked_rows', mlpipe._check_data(src, p_params->'checks'));
    END IF;
    -- _fit samples the training profile while it reads the source (seeded
    -- by params.seed) and hands it back in fit.info.profile.
    fit := mlpipe._fit(p_algorithm, src, p_target, p_features,
                       mlpipe._fit_params(p_params, p_features, p_target)
                       || jsonb_build_object('profile_sample', sample), warm);
    prof := fit.info->'profile';
    -- Lineage notes ride in fit.info, which _register copies into the version.
    fit.info := (coalesce(fit.info, '{}') - 'profile') || lin;
    res := mlpipe._register(p_model, p_algorithm, p_source, p_target, p_params, p_gate, started, fit);
    IF prof IS NOT NULL THEN
        PERFORM mlpipe._set_profile(res.model, res.version, prof);
    END IF;
    PERFORM mlpipe._warn_id_features(src, fit.feature_names, p_model);
    RETURN res;
END $$;
COMMENT ON FUNCTION mlpipe._train(text, text, text, text, text[], jsonb, jsonb) IS
    'The body of mlpipe.train: checks and profiles the source, fits, registers and stores the profile.';

-- == issue 11: scoring by name on Citus, Citus targets for predict_table (helper Z) ==
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
    started    timestamptz := clock_timestamp();
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
        RAISE EXCEPTION 'unknown mode %', coalesce(quote_literal(mode), 'NULL')
            USING ERRCODE = '22023', HINT = 'Modes: append, replace, upsert, incremental.';
    END IF;
    params := coalesce(params, '{}');
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(params) LOOP
        IF k NOT IN ('drift_threshold', 'null_threshold', 'drift_sample') THEN
            RAISE EXCEPTION 'unknown key "%" in predict_table params', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: drift_threshold, null_threshold, drift_sample.';
        END IF;
        IF jsonb_typeof(params->k) <> 'number' OR (params->>k)::float8 < 0
           OR (k <> 'drift_sample' AND (params->>k)::float8 = 0)
           OR (k = 'drift_sample' AND (params->>k)::numeric NOT BETWEEN 0 AND 10000000) THEN
            RAISE EXCEPTION 'predict_table params.% must be a positive number (drift_sample: an integer, 0 for no drift)', k
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    threshold := coalesce((params->>'drift_threshold')::float8, threshold);
    null_thr := coalesce((params->>'null_threshold')::float8, null_thr);
    sample := coalesce((params->>'drift_sample')::numeric::int, sample);

    SELECT * INTO info FROM mlpipe._scoring_info(model_ref);
    ref := info.model || '@' || info.version;          -- one version for the whole run
    SELECT s.type INTO key_type FROM mlpipe._source_columns(source) s WHERE s.name = key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key column "%" is not in the source', key
            USING ERRCODE = '42703',
                  HINT = 'Columns: ' || (SELECT string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe._source_columns(source) s) || '.';
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
        src_sql := substr(src_sql, 15);
    ELSE
        src_sql := '(' || src_sql || ')';
    END IF;
    SELECT * INTO tgt FROM mlpipe._parse_into("into");
    rel := to_regclass(tgt.qualified);

    IF rel IS NOT NULL THEN
        PERFORM mlpipe._check_target(rel, key, key_type, mode);
        IF mode = 'incremental' THEN
            filt := format(' WHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE t.%I = src.%I AND t.model = %L AND t.version = %s)',
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
    xexpr := coalesce(xexpr, 'src');
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
        IF xexpr <> 'src' THEN
            head := format('SELECT src.%1$I, mlpipe._score_class(%2$L, %3$s) AS prediction, '
                           'mlpipe._score_label(%2$L, %3$s) AS label, mlpipe._score_proba(%2$L, %3$s) AS proba',
                           key, ref, xexpr);
            from_sql := format(' FROM %s AS src%s', src_sql, filt);
        ELSE
            head := format('SELECT mlpipe_s.%1$I, mlpipe_s.mlpipe_p AS prediction, '
                           '(%2$L::text[])[mlpipe_s.mlpipe_p::int + 1] AS label, mlpipe_s.mlpipe_pb AS proba',
                           key, info.classes);
            from_sql := format(' FROM (SELECT src.%1$I, mlpipe.predict(%2$L, src) AS mlpipe_p, '
                               'mlpipe.predict_proba(%2$L, src) AS mlpipe_pb '
                               'FROM %3$s AS src%4$s OFFSET 0) AS mlpipe_s',
                               key, ref, src_sql, filt);
        END IF;
        consts := '';
    ELSE
        head := format('SELECT src.%1$I, mlpipe.predict(%2$L, %3$s) AS prediction', key, ref, xexpr);
        from_sql := format(' FROM %s AS src%s', src_sql, filt);
        consts := ', NULL::text AS label, NULL::float8[] AS proba';
    END IF;
    consts := consts || format(', %L::text AS model, %s::int AS version, now() AS scored_at',
                               info.model, info.version);
    -- Ensembles cost microseconds a row to score: for the scoring statement,
    -- make a parallel scan of the source attractive so that CREATE TABLE AS
    -- scores in parallel workers. A single tree or k-means scores faster
    -- than a worker hands rows back, so the caller's settings stay.
    old_ptc := current_setting('parallel_tuple_cost');
    old_psc := current_setting('parallel_setup_cost');
    IF info.algorithm IN ('gbt', 'random_forest') THEN
        PERFORM set_config('parallel_tuple_cost', '0.001', true), set_config('parallel_setup_cost', '10', true);
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
        EXECUTE format('CREATE TABLE %s AS %s%s', tgt.qualified, head, from_sql);
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM set_config('parallel_tuple_cost', old_ptc, true), set_config('parallel_setup_cost', old_psc, true);
        EXECUTE format('ALTER TABLE %s %s ADD COLUMN model text DEFAULT %L, ADD COLUMN version integer DEFAULT %s, '
                       'ADD COLUMN scored_at timestamptz DEFAULT now()', tgt.qualified,
                       CASE WHEN info.task = 'classification' THEN ''
                            ELSE 'ADD COLUMN label text, ADD COLUMN proba double precision[],' END,
                       info.model, info.version);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN model DROP DEFAULT, ALTER COLUMN version DROP DEFAULT',
                       tgt.qualified);
        EXECUTE format('CREATE %s INDEX ON %s (%I)',
                       CASE WHEN mode IN ('upsert', 'replace') THEN 'UNIQUE' ELSE '' END, tgt.qualified, key);
        -- Readers read prediction tables (docs/security.md).
        EXECUTE format('GRANT SELECT ON %s TO mlpipe_reader', tgt.qualified);
    ELSE
        IF mode = 'replace' THEN
            EXECUTE format('DELETE FROM %s', tgt.qualified);
        END IF;
        EXECUTE format('INSERT INTO %s (%I, prediction, label, proba, model, version, scored_at) %s%s%s%s',
                       tgt.qualified, key, head, consts, from_sql,
                       CASE WHEN mode = 'upsert' THEN format(
                           ' ON CONFLICT (%I) DO UPDATE SET prediction = EXCLUDED.prediction, label = EXCLUDED.label, '
                           'proba = EXCLUDED.proba, model = EXCLUDED.model, version = EXCLUDED.version, '
                           'scored_at = EXCLUDED.scored_at', key) ELSE '' END);
        GET DIAGNOSTICS n = ROW_COUNT;
        PERFORM set_config('parallel_tuple_cost', old_ptc, true), set_config('parallel_setup_cost', old_psc, true);
    END IF;

    -- Drift of the source against the training profile, on a sample.
    IF info.profile IS NOT NULL AND sample > 0 AND n > 0 THEN
        FOR d IN SELECT * FROM mlpipe._drift_figures(info.profile, source,
                     CASE WHEN n <= sample THEN 1 ELSE sample::float8 / n END) LOOP
            metrics := metrics || jsonb_build_object('psi:' || d.feature, d.psi,
                                                     'null_rate:' || d.feature, d.null_rate_now);
            IF mlpipe._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_thr) = 'drift' THEN
                drifted := drifted || jsonb_build_object('feature', d.feature, 'psi', d.psi,
                                                         'null_rate_train', d.null_rate_train,
                                                         'null_rate_now', d.null_rate_now);
            END IF;
        END LOOP;
        metrics := metrics || jsonb_build_object('drifted_features', jsonb_array_length(drifted));
    END IF;
    metrics := metrics || jsonb_build_object('rows_per_second',
        n / greatest(extract(epoch FROM clock_timestamp() - started)::float8, 1e-6));
    run := mlpipe._log_run('predict_table', info.model, info.version, info.algorithm, source,
        jsonb_build_object('model_ref', model_ref, 'into', tgt.display, 'key', key, 'mode', mode, 'params', params),
        'succeeded', NULL, n, started, NULL, metrics, 'scoring');
    PERFORM mlpipe._notify('predictions_written', jsonb_build_object('model', info.model, 'version', info.version,
        'run_id', run, 'rows', n, 'into', tgt.display));
    IF jsonb_array_length(drifted) > 0 THEN
        PERFORM mlpipe._notify('drift_detected', jsonb_build_object('model', info.model, 'version', info.version,
            'run_id', run, 'rows', n, 'into', tgt.display, 'threshold', threshold, 'features', drifted));
    END IF;
    RETURN n;
END $$;

-- == merge: the registry trigger function serves the reference cache and Citus plans ==
COMMENT ON FUNCTION mlpipe._registry_changed() IS
    'Trigger function on the registry tables: invalidates the model references the predict functions keep per session and the plans that embedded an artifact.';
