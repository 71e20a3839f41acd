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

-- == issue 14: explain and XGBoost import (helper X) ==

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
