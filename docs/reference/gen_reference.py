#!/usr/bin/python3
"""Writes docs/reference/<function>.md and README.md. Signatures, defaults,
return types, volatility and privileges come from the installed extension
(pg_proc, aclexplode), so they cannot drift from the code; the prose (what
it does, errors, example) is in PAGES below. Run with the PG* env of a
cluster that has the extension:  eval "$(scripts/pg.sh env)";
/usr/bin/python3 docs/reference/gen_reference.py [OUTPUT_DIR]
(OUTPUT_DIR defaults to this folder; test/docs/run.sh writes into a
temporary one and compares, so the pages cannot fall behind the extension)."""
import os
import sys
import psycopg2

HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
ROLES = ["mlpipe_reader", "mlpipe_scorer", "mlpipe_trainer", "mlpipe_admin"]
VOL = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
PAR = {"s": "PARALLEL SAFE", "r": "PARALLEL RESTRICTED", "u": "PARALLEL UNSAFE"}

# area, summary, arguments, returns, errors, example, see
LABEL_FORMS = "`(y_true, y_pred)` as `(text, text)`, `(bigint, bigint)` or `(boolean, boolean)`"
AGG_ERR = ("22000 NaN/infinite numbers, NULL array elements, arrays of different lengths; "
           "54000 more than 2,048 distinct labels, or a state over 1 GB between parallel workers. "
           "Rows with a NULL argument are skipped; no rows give NULL.")


def label_agg(desc):
    return {"area": "Metric aggregates", "summary": desc,
            "args": "- `y_true`, `y_pred`: the truth and the prediction, " + LABEL_FORMS + ".",
            "returns": "see the summary; NULL with no rows.", "errors": AGG_ERR,
            "example": "SELECT mlpipe.%s(y, mlpipe.predict_label('bank', b)) FROM bank b;",
            "see": "../evaluation.md"}


def label_pos_agg(desc):
    return {"area": "Metric aggregates", "summary": desc,
            "args": "- `y_true`, `y_pred`, `positive`: the truth, the prediction and the positive class, as "
                    "`(text, text, text)`, `(bigint, bigint, bigint)` or `(boolean, boolean, boolean)`.",
            "returns": "float8; NULL with no rows; 0 when the class is absent and only one other label is present.",
            "errors": "22004 NULL positive; 22023 a positive class that changes between rows, or that is in neither "
                      "column while two other labels are (scikit-learn's pos_label check); 54000 more than 2,048 "
                      "distinct labels. Rows with a NULL label are skipped.",
            "example": "SELECT mlpipe.%s(y, mlpipe.predict_label('bank', b), 'yes') FROM bank b;",
            "see": "../evaluation.md"}


def reg_agg(desc):
    return {"area": "Metric aggregates", "summary": desc,
            "args": "- `y_true`, `y_pred`: float8 truth and prediction.",
            "returns": "float8; NULL with no rows (r2: NULL on one row).",
            "errors": "22000 NaN or infinite values. Rows with a NULL are skipped.",
            "example": "SELECT mlpipe.%s(price, mlpipe.predict('milk_price', m)) FROM milk m;",
            "see": "../evaluation.md"}


def clu_agg(desc):
    return {"area": "Metric aggregates", "summary": desc,
            "args": "- `x`: the point (float8[], same length in every row).\n- `label`: its cluster (any integers).",
            "returns": "float8; NULL with fewer than 2 clusters or as many clusters as points.",
            "errors": "22000 NaN/infinite values, NULL elements, empty arrays or arrays of different lengths; "
                      "54000 a state over 1 GB between parallel workers (every point is kept).",
            "example": "SELECT mlpipe.%s(ARRAY[x1, x2], mlpipe.predict('skin', ARRAY[x1, x2])::int) FROM pts;",
            "see": "../evaluation.md"}


REF_ERR = ("42704 unknown model, version or alias (HINT lists what exists); 22004 NULL reference; "
           "42501 the caller lacks the role")
PRED_ERR = (REF_ERR + "; 22000 wrong number of features, NULL elements, a row lacking a column the "
            "model needs or a column of the wrong type; XX001 corrupt artifact (bytea forms)")

PAGES = {
    "train": {"area": "Training", "summary":
              "Trains `kmeans`, `minibatch_kmeans`, `decision_tree`, `random_forest` or `gbt` on a table, view "
              "or SELECT (read as the caller, so grants and row-level security apply), holds out a test split, "
              "records the metrics, registers a new version and moves `production` to it when the gate passes "
              "(no gate: the first version, then any version not worse than production on the main metric).",
              "args": "- `model`: registry name (1-200 characters, no `@`).\n"
                      "- `algorithm`: one of the five above.\n"
                      "- `source`: table, view or one SELECT.\n"
                      "- `target`: target column; NULL for k-means.\n"
                      "- `features`: columns to use; NULL = every column but the target and `params.exclude`.\n"
                      "- `params`: algorithm parameters, `split`, `test_size`, `preprocess`, `as_of`, `checks`, "
                      "`seed`, `group_by` (one model per group), ... (see [kmeans.md](../kmeans.md), [trees.md](../trees.md), "
                      "[grouped-models.md](../grouped-models.md), "
                      "[preprocessing.md](../preprocessing.md), [time-travel.md](../time-travel.md)).\n"
                      "- `gate`: `{metric, min|max, must_beat, tolerance, higher_is_better}`.",
              "returns": "one row: model, version, promoted, metrics (jsonb), run_id; with `params.group_by`, one row per group.",
              "errors": "22023 unknown algorithm, param or gate key (with \"did you mean\"), invalid model name; "
                        "22P02 params not valid JSON (PostgreSQL's jsonb parser); 22000 empty or non-finite data, failed `checks`; "
                        "42703 / 42P01 unknown column / relation; 54000 over `mlpipe.max_memory` or a limit; "
                        "57014 cancelled.",
              "example": "SELECT * FROM mlpipe.train('bank', 'gbt', 'bank', 'y',\n"
                         "    params => '{\"n_estimators\": 100, \"seed\": 1}', gate => '{\"metric\": \"accuracy\", \"min\": 0.85}');",
              "see": "../registry.md"},
    "cross_validate": {"area": "Training", "summary":
                       "k-fold cross-validation (stratified for classification, reproducible from `params.seed`) "
                       "without registering anything; logged as a `cross_validate` run with one `cv_fold` run per fold.",
                       "args": "- `algorithm`, `source`, `target`, `features`, `params`: as in `train`.\n"
                               "- `folds`: number of folds (>= 2).",
                       "returns": "jsonb `{task, rows, run_id, folds: [...], mean: {...}, std: {...}}`.",
                       "errors": "22023 folds < 2 or more than the rows, NULL target or k-means, params not an "
                                 "object, unknown params; 22004 NULL arguments; 22000 no rows.",
                       "example": "SELECT mlpipe.cross_validate('gbt', 'bank', 'y', NULL, '{\"n_estimators\": 30}', 5)->'mean';",
                       "see": "../evaluation.md"},
    "search": {"area": "Training", "summary":
               "Hyper-parameter search: every candidate of `space` is cross-validated, the best by the task's main "
               "metric (accuracy, rmse) is trained on all rows with `mlpipe.train(model, ..., gate)` and registered.",
               "args": "- `model`, `algorithm`, `source`, `target`, `features`: as in `train`.\n"
                       "- `space`: `{param: [values]}`; with `random`, also `{param: {min, max, log, int}}`.\n"
                       "- `strategy`: `grid` or `random`.\n- `folds`: folds per candidate.\n"
                       "- `trials`: draws for `random`.\n- `gate`: as in `train`.",
               "returns": "the row `train` returns for the winning parameters.",
               "errors": "22023 empty or non-object space, empty list, range in a grid, unknown strategy, "
                         "trials < 1, folds < 2, unknown parameter (at the first trial); 54000 more than 1,000 grid "
                         "combinations; 22000 no trial produced a score.",
               "example": "SELECT * FROM mlpipe.search('bank', 'gbt', 'bank', 'y', NULL,\n"
                          "    '{\"max_depth\": [3, 5], \"learning_rate\": [0.05, 0.1]}', folds => 3);",
               "see": "../evaluation.md"},
    "predict": {"area": "Scoring", "summary":
                "Scores one row: cluster number (0-based), class index, or regression value. `model_ref` is "
                "`name`, `name@alias` or `name@version` (plain `name` = production); the artifact is cached per "
                "backend. The `row` forms match columns by name and apply the stored preprocessing (date columns "
                "expanded into their date parts); by a grouped model's name they score each row with its group's "
                "model (NULL, or the fallback, for a group without one: [grouped-models.md](../grouped-models.md)); the float8[] "
                "forms take the features in the order of `mlpipe.features(model_ref)`. The bytea forms score an "
                "artifact directly (no registry lookup).",
                "args": "- `model_ref` / `model`: registry reference or artifact bytea.\n"
                        "- `features`: float8[] / `row`: a record (e.g. the table alias).",
                "returns": "float8.", "errors": PRED_ERR + ".",
                "example": "SELECT mlpipe.predict('bank', b) FROM bank b LIMIT 3;\n"
                           "SELECT mlpipe.predict('skin@2', ARRAY[74, 85, 123]);",
                "see": "../batch-scoring.md"},
    "predict_label": {"area": "Scoring", "summary": "The predicted class label as it was in the training target (text).",
                      "args": "As [predict](predict.md).", "returns": "text.",
                      "errors": PRED_ERR + "; 42809 the model is not a classifier (HINT: use mlpipe.predict).",
                      "example": "SELECT mlpipe.predict_label('bank', b) FROM bank b LIMIT 3;",
                      "see": "../batch-scoring.md"},
    "predict_proba": {"area": "Scoring", "summary":
                      "One probability per class, in the order of `mlpipe.classes(model_ref)`.",
                      "args": "As [predict](predict.md).", "returns": "float8[].",
                      "errors": PRED_ERR + "; 42809 the model is not a classifier.",
                      "example": "SELECT (mlpipe.predict_proba('bank', b))[2] AS p_yes FROM bank b LIMIT 3;",
                      "see": "../batch-scoring.md"},
    "predict_table": {"area": "Scoring", "summary":
                      "Scores a source into a table (created when missing with key, prediction, label, proba, model, "
                      "version, scored_at). Modes: `append`, `replace`, `upsert` (needs a unique index on key: "
                      "created when missing), `incremental` (only keys not yet scored; indexes the key when "
                      "missing). `append` and `replace` build no index (add one with `CREATE INDEX` to look rows "
                      "up by key). Logged as a `predict_table` run with the row count "
                      "and drift figures of a sample.",
                      "args": "- `model_ref`: registry reference.\n- `source`: table, view or SELECT (read as the caller).\n"
                              "- `into`: target table (`table` or `schema.table`), by position; named calls use "
                              "`target_table` (`into` is a reserved word).\n- `key`: key column of the source.\n"
                              "- `mode`: see above.\n- `params`: `drift_threshold`, `null_threshold`, `drift_sample`.\n"
                              "- `on_null`: a row with a NULL the model cannot take: `error` (default; names the row's "
                              "key), `skip` (left out, a NOTICE counts them), `null` (NULL prediction).\n"
                              "- `target_table`: the target table, for named calls.",
                      "returns": "bigint: rows written.",
                      "errors": "22004 NULL arguments; 22023 unknown mode, on_null or params key, bad target name, no "
                                "target or both `into` and `target_table`, key named like an output column; 42703 key "
                                "not in the source; 22000 the target is not a table, lacks columns, or lacks a unique index "
                                "for upsert that cannot be created (duplicate keys, not the owner); a row the model cannot score: its error, naming the row's key; " + REF_ERR + ".",
                      "example": "SELECT mlpipe.predict_table('bank', 'bank', target_table => 'bank_scores', key => 'id', "
                                 "mode => 'replace');",
                      "see": "../batch-scoring.md"},
    "proba_json": {"area": "Scoring", "summary":
                   "Class probabilities as a JSON object `{class: probability}`, from `mlpipe.classes(model_ref)` and "
                   "a `predict_proba` array (or the `proba` column of a `predict_table` target). For a binary model "
                   "the positive class is the second class (sorted order), so `proba[2]` is its probability.",
                   "args": "- `classes`: the class labels, `mlpipe.classes(model_ref)`.\n- `proba`: probabilities in that order.",
                   "returns": "jsonb.",
                   "errors": "22023 the arrays differ in length.",
                   "example": "SELECT id, mlpipe.proba_json((SELECT mlpipe.classes('bank')), proba) FROM bank_scores LIMIT 3;",
                   "see": "../batch-scoring.md"},
    "drift": {"area": "Scoring", "summary":
              "Population stability index of each feature of a source against the training profile "
              "(`mlpipe.profile`), and null rates; sends `drift_detected` when a feature drifts.",
              "args": "- `model_ref`: registry reference.\n- `source`: table, view or SELECT.\n"
                      "- `threshold`: PSI at or above which a feature is `drift` (`warning` from half of it).\n"
                      "- `null_threshold`: rise of the null rate that counts as drift.",
              "returns": "TABLE (feature, psi, null_rate_train, null_rate_now, status).",
              "errors": "22004 NULL arguments; 22023 non-positive thresholds; 22000 the version has no profile "
                        "(trained before 0.3.0 or `profile_sample = 0`), the source returned no rows; "
                        "42703 a model feature is missing from the source; " + REF_ERR + ".",
              "example": "SELECT * FROM mlpipe.drift('hive_states',\n"
                         "    'SELECT * FROM beehive.hive_daily WHERE period_start >= ''2021-10-01''');",
              "see": "../drift.md"},
    "evaluate": {"area": "Evaluation", "summary":
                 "Scores a source with a registered version and returns the task's metrics: classification "
                 "(accuracy, precision/recall/f1, log_loss, roc_auc, confusion_matrix), regression (rmse, mae, r2, "
                 "mape), clustering (silhouette on at most 10,000 hashed rows, calinski_harabasz, davies_bouldin on "
                 "the raw feature values with the clusters the model assigns; no target needed). Logged as an "
                 "`evaluate` run with `split = 'evaluate'`.",
                 "args": "- `model_ref`: registry reference.\n- `source`: table, view or SELECT with the target column "
                         "(supervised models).",
                 "returns": "jsonb: the metrics plus rows, model, version, run_id.",
                 "errors": "22004 NULL arguments; 22023 empty source; 22000 no rows with a non-NULL target; "
                           "42501 no access to the source; " + REF_ERR + ".",
                 "example": "SELECT mlpipe.evaluate('bank', 'SELECT * FROM bank WHERE month = ''dec''');",
                 "see": "../evaluation.md"},
    "accuracy": label_agg("Share of rows where prediction equals truth."),
    "precision_macro": label_agg("Precision averaged over the labels present in either column (zero_division 0)."),
    "recall_macro": label_agg("Recall averaged over the labels present in either column (zero_division 0)."),
    "f1_macro": label_agg("F1 averaged over the labels present in either column."),
    "f1_weighted": label_agg("F1 per label weighted by the label's support."),
    "confusion_matrix": label_agg("jsonb `{\"labels\": [...], \"matrix\": [[...]]}`: rows are true labels, columns "
                                  "predictions, labels sorted as scikit-learn sorts them."),
    "log_loss": {"area": "Metric aggregates", "summary":
                 "Cross-entropy, as scikit-learn 1.2 (probabilities clipped to [eps, 1-eps], rows renormalised).",
                 "args": "- `(y_true boolean, p float8)`: p = P(true).\n"
                         "- `(y_true text, proba float8[], classes text[])`: proba in the order of classes "
                         "(pass `mlpipe.classes(model)`).",
                 "returns": "float8; NULL with no rows.",
                 "errors": "22000 p outside [0, 1], NaN, proba length differs from classes, label not in classes; "
                           "22023 classes with fewer than 2 or duplicate labels.",
                 "example": "SELECT mlpipe.log_loss(y, mlpipe.predict_proba('bank', b), mlpipe.classes('bank')) FROM bank b;",
                 "see": "../evaluation.md"},
    "roc_auc": {"area": "Metric aggregates", "summary":
                "Area under the ROC curve: binary (ties at half credit) or macro one-vs-rest over the classes present.",
                "args": "- `(y_true boolean, score float8)`.\n- `(y_true text, proba float8[], classes text[])`.",
                "returns": "float8; NULL with one class present or no rows.",
                "errors": "22000 NaN, proba length differs from classes, label not in classes; 22023 bad classes; "
                          "54000 state over 1 GB between parallel workers.",
                "example": "SELECT mlpipe.roc_auc(y = 'yes', (mlpipe.predict_proba('bank', b))[2]) FROM bank b;",
                "see": "../evaluation.md"},
    "precision": label_pos_agg("Precision of the named positive class: tp / (tp + fp), 0 when nothing is "
                               "predicted positive (scikit-learn's pos_label, average='binary')."),
    "recall": label_pos_agg("Recall of the named positive class: tp / (tp + fn), 0 when the class has no rows."),
    "f1": label_pos_agg("F1 of the named positive class: 2 tp / (2 tp + fp + fn)."),
    "average_precision": {"area": "Metric aggregates", "summary":
                          "Average precision (PR-AUC) as scikit-learn's average_precision_score: the step sum of "
                          "(R_i - R_{i-1}) P_i over the distinct scores, not a trapezoid.",
                          "args": "- `y_true boolean`: the truth.\n- `score float8`: higher means positive.",
                          "returns": "float8; NULL with no positive row or no rows.",
                          "errors": "22000 NaN or infinite scores; 54000 a state over 1 GB between parallel workers "
                                    "(every row is kept). Rows with a NULL are skipped.",
                          "example": "SELECT mlpipe.average_precision(y = 'yes', (mlpipe.predict_proba('bank', b))[2]) FROM bank b;",
                          "see": "../evaluation.md"},
    "roc_curve": {"area": "Evaluation", "summary":
                  "The ROC curve of a binary scorer as rows (threshold, fpr, tpr), point for point scikit-learn's "
                  "roc_curve: from (0, 0) at the highest score + 1, corners only unless drop_intermediate is false.",
                  "args": "- `y_true boolean[]`, `score float8[]`: the truth and the score, in the same order "
                          "(array_agg of both in one query); pairs with a NULL are left out.\n"
                          "- `drop_intermediate`: keep only the corners (default true).",
                  "returns": "rows (threshold, fpr, tpr); fpr (tpr) is NULL without negatives (positives); no pairs: no rows.",
                  "errors": "22000 arrays of different lengths or more than one dimension, a NaN or infinite score.",
                  "example": "SELECT c.* FROM (SELECT array_agg(y = 'yes') y, array_agg((mlpipe.predict_proba('bank', b))[2]) s\n"
                             "                  FROM bank b) a, mlpipe.roc_curve(a.y, a.s) c;",
                  "see": "../evaluation.md"},
    "pr_curve": {"area": "Evaluation", "summary":
                 "The precision-recall curve of a binary scorer as rows (threshold, precision, recall), scikit-learn's "
                 "precision_recall_curve: thresholds ascending, then (precision 1, recall 0) with a NULL threshold.",
                 "args": "- `y_true boolean[]`, `score float8[]`: the truth and the score, in the same order; pairs "
                         "with a NULL are left out.",
                 "returns": "rows (threshold, precision, recall); no pairs: no rows.",
                 "errors": "22000 arrays of different lengths or more than one dimension, a NaN or infinite score.",
                 "example": "SELECT c.* FROM (SELECT array_agg(y = 'yes') y, array_agg((mlpipe.predict_proba('bank', b))[2]) s\n"
                            "                  FROM bank b) a, mlpipe.pr_curve(a.y, a.s) c;",
                 "see": "../evaluation.md"},
    "calibration": {"area": "Evaluation", "summary":
                    "Fits the probability calibration params.calibrate stores (Platt's sigmoid or isotonic "
                    "regression, as scikit-learn's CalibratedClassifierCV) on given (truth, score) pairs.",
                    "args": "- `y_true boolean[]`, `score float8[]`: held-out truth and scores; pairs with a NULL are "
                            "left out.\n- `method`: `isotonic` (default) or `platt`.",
                    "returns": "jsonb `{\"method\": \"isotonic\", \"x\": [...], \"y\": [...]}` (knots, linear between, "
                               "clipped at the ends) or `{\"method\": \"platt\", \"a\": a, \"b\": b}` (p = 1 / (1 + exp(a s + b))); "
                               "NULL with no pairs.",
                    "errors": "22023 unknown method; 22000 arrays of different lengths, a NaN or infinite score.",
                    "example": "SELECT mlpipe.calibration('{t,f,t,f,t}', '{0.9,0.1,0.4,0.5,0.8}', 'platt');",
                    "see": "../evaluation.md"},
    "tune_threshold": {"area": "Training", "summary":
                       "Registers a new version of a binary classifier whose decision threshold maximises a metric on "
                       "its test split: the version's recorded training repeated with params.threshold = metric.",
                       "args": "- `model_ref`: the version to start from.\n- `metric`: f1 (default), accuracy, "
                               "recall_macro, precision_macro or f1_macro.\n- `gate`: as in train (NULL: the default gate).",
                       "returns": "the new version as train returns it: (model, version, promoted, metrics, run_id); "
                                  "metrics include `threshold`.",
                       "errors": "22004 NULL model_ref or metric; 22023 unknown metric, not a binary classifier, no "
                                 "training to repeat (imported); what training raises on the recorded source; " + REF_ERR + ".",
                       "example": "SELECT * FROM mlpipe.tune_threshold('bank@1', 'f1', '{\"metric\": \"f1\", \"must_beat\": \"production\"}');",
                       "see": "../evaluation.md"},
    "rmse": reg_agg("Root mean squared error."),
    "mae": reg_agg("Mean absolute error."),
    "r2": reg_agg("Coefficient of determination (1 for an exact prediction of a constant truth, else 0 then)."),
    "mape": reg_agg("Mean absolute percentage error, dividing by max(abs(y), eps) as scikit-learn (a fraction, not %)."),
    "silhouette": clu_agg("Mean silhouette coefficient, Euclidean, exact O(n^2)."),
    "calinski_harabasz": clu_agg("Calinski-Harabasz score (between/within dispersion)."),
    "davies_bouldin": clu_agg("Davies-Bouldin score (lower is better)."),
    "ts_features": {"area": "Features", "summary":
                    "Summary of a time series in one pass: n, n_null, mean, std, min, max, q05, q25, median, q75, "
                    "q95, skewness, kurtosis, slope per hour, first, last, mean_abs_change, autocorr_lag1, "
                    "longest_gap (seconds). Parallel safe (combine/serial/deserial).",
                    "args": "- `ts`: reading time.\n- `value`: reading (NULL counts in n_null).",
                    "returns": "`mlpipe.ts_summary`; expand with `(mlpipe.ts_features(ts, v)).*`.",
                    "errors": "22000 a non-finite timestamp; 54000 a group with more readings than `mlpipe.max_memory` / 16 bytes allows.",
                    "example": "SELECT hive, date_trunc('day', ts) AS day, (mlpipe.ts_features(ts, temperature)).*\n"
                               "  FROM beehive.sensor GROUP BY 1, 2;",
                    "see": "../features.md"},
    "summary": {"area": "Features", "summary":
                "Distribution summary of a column: n, n_null, mean, std, min, max, quantiles, skewness, kurtosis.",
                "args": "- `value`: float8.", "returns": "`mlpipe.value_summary`.",
                "errors": "54000 a group with more values than `mlpipe.max_memory` / 16 bytes allows (HINT: raise it or use smaller groups).",
                "example": "SELECT (mlpipe.summary(temperature)).* FROM beehive.sensor;",
                "see": "../features.md"},
    "resolve": {"area": "Registry", "summary": "Resolves `name`, `name@alias` or `name@version` to a model and version.",
                "args": "- `model_ref`: the reference.", "returns": "(model text, version int).",
                "errors": REF_ERR + ".", "example": "SELECT * FROM mlpipe.resolve('bank@production');",
                "see": "../registry.md"},
    "drop_model": {"area": "Registry", "summary":
                   "Removes a model with its versions, aliases, tags and metrics in one transaction; alias_events and "
                   "runs stay as history (each alias gets a `drop` event); logs a `drop_model` run and sends `model_dropped`.",
                   "args": "- `name`: the model.",
                   "returns": "int: the number of versions removed.",
                   "errors": "42704 unknown model; 42501 not admin. A WARNING names pipelines that still use the model.",
                   "example": "SELECT mlpipe.drop_model('bank_old');",
                   "see": "../registry.md"},
    "import": {"area": "Training", "summary":
               "Registers an XGBoost 1.x JSON model (`Booster.save_model('m.json')`: binary:logistic, multi:softprob, "
               "multi:softmax, reg:squarederror) as a new gbt version, or the `mlpipe.export` output of a tree model "
               "(decision_tree, random_forest, gbt) as a version of its algorithm that predicts identically, through "
               "the same registry path as `train` (lineage says imported, from what); gated and promoted like any "
               "other version.",
               "args": "- `model`: the model name.\n- `doc`: the XGBoost JSON document or mlpipe export.\n- `features`: "
                       "column names for the document's features, in its order (default: the document's names).\n- "
                       "`classes`: class labels (default: the export's, or 0..n-1 for XGBoost).\n- `gate`: as in "
                       "`train`.\n- `origin`: free text kept as the version's source.",
               "returns": "int: the new version.",
               "errors": "22023 unsupported format, objective, booster or categorical splits; 0A000 the export of a "
                         "k-means model or of a model with preprocessing; 22P02 a malformed document (the message "
                         "names the JSON path); 42501 not trainer.",
               "example": "SELECT mlpipe.import('bank_xgb', pg_read_file('/tmp/m.json')::jsonb, origin => 'm.json');",
               "see": "../explain.md"},
    "explain": {"area": "Scoring", "summary":
                "Why a model scored a row: one row per feature with its exact TreeSHAP contribution (tree models; on the "
                "margin for classifiers, the value for regression), then a row with feature NULL holding the expected "
                "value; for k-means each feature's part of the squared distance, then the cluster and the distance. "
                "Usable in a LATERAL join.",
                "args": "- `model_ref`: name, `name@version` or `name@alias`.\n- `features` (float8[]) or `row` (record, "
                        "columns matched by name).\n- `top_k`: only the k largest |contributions|.\n- `class`: the class "
                        "to explain (default: the predicted class; binary models: the second class).",
                "returns": "setof (feature text, value float8, contribution float8).",
                "errors": "42704 unknown model; 22023 a version without stored covers (trained before 0.4.0: retrain) "
                          "or an unknown class; 0A000 the float8[] form on a model with preprocessing (pass the row: "
                          "it reports one contribution per original column); 22000 wrong feature count.",
                "example": "SELECT e.* FROM bank b, LATERAL mlpipe.explain('bank', b, top_k => 3) e LIMIT 6;",
                "see": "../explain.md"},
    "explain_values": {"area": "Scoring", "summary":
                       "Every output's TreeSHAP contributions of a tree model in XGBoost's `pred_contribs` layout: per "
                       "output, one value per feature, then the expected value.",
                       "args": "- `model_ref`.\n- `features`: float8[].",
                       "returns": "float8[] of outputs x (features + 1).",
                       "errors": "as `explain`.",
                       "example": "SELECT mlpipe.explain_values('bank', ARRAY[1, 2, 3]::float8[]);",
                       "see": "../explain.md"},
    "explain_global": {"area": "Scoring", "summary":
                       "A tree model's global explanation over a source: each feature's mean |TreeSHAP contribution| "
                       "(the row form of `explain`, so original columns for a model with preprocessing) over a "
                       "deterministic sample of the source's rows, beside its normalised gain importance; largest "
                       "first. Reads the source as the caller.",
                       "args": "- `model_ref`.\n- `source`: table, view or query.\n- `sample`: rows to explain "
                               "(default 10000; the rows with the smallest hash of their text, every row when fewer).\n"
                               "- `class`: as in `explain`.",
                       "returns": "setof (feature text, mean_abs_contribution float8, gain_importance float8).",
                       "errors": "as `explain`; 22023 sample < 1; 42809 a k-means model; 42501 not trainer.",
                       "example": "SELECT * FROM mlpipe.explain_global('bank', 'bank', sample => 2000);",
                       "see": "../explain.md"},
    "anomaly_score": {"area": "Scoring", "summary":
                      "A row's anomaly score under a k-means model trained with `params.contamination`: its distance "
                      "to the nearest centroid over that cluster's root mean squared training distance (BigQuery's "
                      "ML.DETECT_ANOMALIES normalised distance). Name and bytea forms, float8[] and row forms, as predict.",
                      "args": "- `model_ref` / `model`: registry reference or artifact bytea.\n"
                              "- `features`: float8[] / `row`: a record (columns matched by name).",
                      "returns": "float8 (1 is a typical distance for the cluster).",
                      "errors": "42809 not a k-means model; 55000 trained without `params.contamination`; 22000 wrong "
                                "feature count or a NULL/NaN/infinite feature; " + REF_ERR + ".",
                      "example": "SELECT mlpipe.anomaly_score('hive_anomalies', h) FROM hive_hours h LIMIT 3;",
                      "see": "../kmeans.md#anomaly-detection"},
    "is_anomaly": {"area": "Scoring", "summary":
                   "Whether a row's anomaly score is above the threshold stored at training: the (1 - contamination) "
                   "quantile of the training rows' scores, so it flags that fraction of the training rows.",
                   "args": "- `model_ref` / `model`: registry reference or artifact bytea.\n"
                           "- `features`: float8[] / `row`: a record (columns matched by name).",
                   "returns": "boolean.", "errors": "as `anomaly_score`.",
                   "example": "SELECT count(*) FILTER (WHERE mlpipe.is_anomaly('hive_anomalies', h)) FROM hive_hours h;",
                   "see": "../kmeans.md#anomaly-detection"},
    "training_info": {"area": "Registry", "summary":
                      "One row per training iteration of a version, like BigQuery's ML.TRAINING_INFO: k-means Lloyd "
                      "iterations (inertia), mini-batch epochs (estimated inertia), gbt rounds (training and "
                      "validation loss as XGBoost's eval metric), with milliseconds elapsed. Read from "
                      "`mlpipe.training_iterations`.",
                      "args": "- `model_ref`.",
                      "returns": "TABLE (iteration int, training_loss float8, validation_loss float8, elapsed_ms float8).",
                      "errors": "0A000 a decision_tree or random_forest model; " + REF_ERR + ".",
                      "example": "SELECT * FROM mlpipe.training_info('hive_anomalies');",
                      "see": "../kmeans.md#training-iterations"},
    "promote": {"area": "Registry", "summary":
                "Points an alias at a version (recorded in the append-only `mlpipe.alias_events`), optionally "
                "checking a gate first; sends `promoted`.",
                "args": "- `model`, `version`: the version.\n- `alias`: alias name.\n- `reason`: free text kept in the "
                        "event.\n- `gate`: as in `train`; the alias is not moved when it fails.",
                "returns": "int: the version, or NULL when the gate failed (alias unchanged).",
                "errors": "42704 unknown model or version; 22023 invalid alias or gate; 22004 NULL alias; 42501 not admin.",
                "example": "SELECT mlpipe.promote('bank', 3, 'staging', 'shadow test');",
                "see": "../registry.md"},
    "rollback": {"area": "Registry", "summary":
                 "Moves an alias back to the version it pointed to before (from `mlpipe.alias_events`); sends `rolled_back`.",
                 "args": "- `model`.\n- `alias`.\n- `reason`.",
                 "returns": "int: the version the alias now points to.",
                 "errors": "42704 unknown model or alias; 55000 no earlier version to go back to; 42501 not admin.",
                 "example": "SELECT mlpipe.rollback('bank');", "see": "../registry.md"},
    "version_at": {"area": "Registry", "summary": "The version an alias pointed to at a past time (time travel).",
                   "args": "- `model`.\n- `at`: the time.\n- `alias`.",
                   "returns": "int, NULL before the alias was first set (or `at` NULL).",
                   "errors": "42704 unknown model or an alias it never had; 22004 NULL alias.",
                   "example": "SELECT mlpipe.version_at('bank', now() - interval '7 days');",
                   "see": "../registry.md"},
    "prune": {"area": "Registry", "summary":
              "Deletes old versions beyond the newest `keep`, only those older than `retain`; never one an alias "
              "points to, never the newest.",
              "args": "- `model`.\n- `keep`: versions to keep (>= 1).\n- `retain`: minimum age of a deleted version.",
              "returns": "int[]: the versions deleted.",
              "errors": "22023 keep < 1 or NULL, negative or NULL retain; 42704 unknown model; 42501 not admin.",
              "example": "SELECT mlpipe.prune('bank', keep => 5, retain => '0 days');", "see": "../registry.md"},
    "tag": {"area": "Registry", "summary": "Sets a tag on a model or on one version.",
            "args": "- `model`, optional `version`.\n- `key`: 1-128 characters.\n- `value`: text, not NULL.",
            "returns": "jsonb: the tags after the change.",
            "errors": "22023 invalid key; 22004 NULL value (use untag); 54000 too many tags; 42704 unknown model or "
                      "version; 42501 not admin.",
            "example": "SELECT mlpipe.tag('bank', 3, 'owner', 'risk-team');", "see": "../registry.md"},
    "untag": {"area": "Registry", "summary": "Removes a tag from a model or a version.",
              "args": "- `model`, optional `version`.\n- `key`.", "returns": "jsonb: the tags after the change.",
              "errors": "22023 invalid key; 42704 unknown model or version; 42501 not admin.",
              "example": "SELECT mlpipe.untag('bank', 3, 'owner');", "see": "../registry.md"},
    "model_info": {"area": "Registry", "summary":
                   "Everything about a version in one document: model, version, algorithm, task, target, features, "
                   "classes, params, metrics, gate, status, lineage, tags, model_tags, aliases, size, sha256, "
                   "training_rows, skipped_rows, run_id, created_at, created_by.",
                   "args": "- `model_ref`.", "returns": "jsonb.", "errors": REF_ERR + ".",
                   "example": "SELECT jsonb_pretty(mlpipe.model_info('bank'));", "see": "../registry.md"},
    "export": {"area": "Registry", "summary":
               "The model as JSON (trees, centroids, preprocessing) for inspection or other tools. "
               "`mlpipe.import`, its inverse in API.md, is **not built** in 0.3.0.",
               "args": "- `model_ref` (registry) or `model` (artifact bytea).", "returns": "jsonb.",
               "errors": REF_ERR + "; XX001 corrupt artifact.",
               "example": "SELECT mlpipe.export('milk_price')->'preprocess';", "see": "../artifact-format.md"},
    "features": {"area": "Registry", "summary": "The feature names of a version, in the order the float8[] forms of predict take them.",
                 "args": "- `model_ref`.", "returns": "text[].", "errors": REF_ERR + ".",
                 "example": "SELECT mlpipe.features('bank');", "see": "../registry.md"},
    "drop_grouped_model": {"area": "Registry", "summary":
                           "Removes a grouped model (`params.group_by`) for good: every group's model, as "
                           "`drop_model` removes it (each logged and notified), and its rows in `grouped_models` and "
                           "`model_groups`, in one transaction. Requires `mlpipe_admin`.",
                           "args": "- `name`: the grouped model's name.",
                           "returns": "int: the number of group models dropped.",
                           "errors": "42704 not a grouped model.",
                           "example": "SELECT mlpipe.drop_grouped_model('hive_humidity');",
                           "see": "../grouped-models.md"},
    "group_model_name": {"area": "Registry", "summary":
                         "The model name of one group of a grouped model (`params.group_by`): the parent, `/`, then "
                         "the group's values (as their type's output function writes them) joined by `/`, with `%`, "
                         "`/`, `@` and control characters percent-encoded.",
                         "args": "- `parent`: the grouped model's name.\n- `group_key`: the group's values as text, "
                                 "one per `group_by` column.",
                         "returns": "text (NULL when an argument is NULL).",
                         "errors": "none.",
                         "example": "SELECT mlpipe.group_model_name('sales', ARRAY['north/east', 'f']);  -- sales/north%2Feast/f",
                         "see": "../grouped-models.md"},
    "classes": {"area": "Registry", "summary": "The class labels of a classifier, in the order of `predict_proba`; NULL otherwise.",
                "args": "- `model_ref`.", "returns": "text[].", "errors": REF_ERR + ".",
                "example": "SELECT mlpipe.classes('bank');", "see": "../registry.md"},
    "feature_importance": {"area": "Registry", "summary": "Gain-based importance of each feature of a tree model (sums to 1).",
                           "args": "- `model_ref`.", "returns": "TABLE (feature, importance).",
                           "errors": REF_ERR + "; 42809 k-means model.",
                           "example": "SELECT * FROM mlpipe.feature_importance('bank') ORDER BY importance DESC LIMIT 5;",
                           "see": "../trees.md"},
    "artifact": {"area": "Registry", "summary": "The artifact bytes of a version (for the bytea forms of predict or export).",
                 "args": "- `model_ref`.", "returns": "bytea.", "errors": REF_ERR + ".",
                 "example": "SELECT length(mlpipe.artifact('bank'));", "see": "../artifact-format.md"},
    "profile": {"area": "Registry", "summary": "The training profile of a version (bin edges and shares per feature) used by drift.",
                "args": "- `model_ref`.", "returns": "jsonb `{rows, sample, fraction, features}`, NULL when the version has none.",
                "errors": REF_ERR + ".", "example": "SELECT mlpipe.profile('hive_states')->'rows';",
                "see": "../drift.md"},
    "create_pipeline": {"area": "Pipelines", "summary":
                        "Validates a pipeline config (steps features, train, search, predict, evaluate, drift) and "
                        "stores it as a new version of the named pipeline (the same config again is no new version).",
                        "args": "- `name`: 1-200 characters.\n- `config`: jsonb, or text (JSON; errors then point at "
                                "the parse position).",
                        "returns": "int: the pipeline version.",
                        "errors": "22023 unknown key (with \"did you mean\"), kind or value, a source that does not "
                                  "exist and no earlier step writes, a source that is not one SELECT, bad name; "
                                  "22032 missing key, wrong JSON type, malformed JSON; 22004 NULL config; 54000 more than "
                                  "100 steps; 42501 not admin.",
                        "example": "SELECT mlpipe.create_pipeline('hive', pg_read_file('/abs/path/docs/examples/hive.json'));",
                        "see": "../pipelines.md"},
    "run_pipeline": {"area": "Pipelines", "summary":
                     "Runs the current version, each step in a subtransaction logged as a `pipeline_step` run. A "
                     "failing step does not raise: the run is marked failed, `run_failed` is sent, a WARNING printed.",
                     "args": "- `name`.", "returns": "bigint: the pipeline run id.",
                     "errors": "42704 unknown pipeline; 55P03 already running; 42501 not admin.",
                     "example": "SELECT mlpipe.run_pipeline('hive');", "see": "../pipelines.md"},
    "schedule": {"area": "Pipelines", "summary": "Schedules `run_pipeline(name)` as pg_cron job `mlpipe:<name>` (replacing an earlier one).",
                 "args": "- `name`.\n- `cron`: five-field cron expression.", "returns": "bigint: the pg_cron job id.",
                 "errors": "55000 pg_cron not preloaded, not created, or in another database (HINT); 22023 empty or "
                           "invalid cron; 42704 unknown pipeline; 42501 not admin.",
                 "example": "SELECT mlpipe.schedule('hive', '0 21 * * *');", "see": "../pipelines.md"},
    "unschedule": {"area": "Pipelines", "summary": "Removes the pg_cron job of a pipeline.",
                   "args": "- `name`.", "returns": "boolean: whether a job was removed.",
                   "errors": "55000 as schedule; 42704 unknown pipeline.",
                   "example": "SELECT mlpipe.unschedule('hive');", "see": "../pipelines.md"},
    "drop_pipeline": {"area": "Pipelines", "summary": "Unschedules and removes a pipeline; its versions' history and runs stay.",
                      "args": "- `name`.", "returns": "void.", "errors": "42704 unknown pipeline; 42501 not admin.",
                      "example": "SELECT mlpipe.drop_pipeline('hive');", "see": "../pipelines.md"},
    "version": {"area": "Misc", "summary": "The installed mlpipe version.", "args": "None.", "returns": "text, `'0.3.0'`.",
                "errors": "None.", "example": "SELECT mlpipe.version();", "see": "../getting-started.md"},
}
AREAS = ["Training", "Scoring", "Evaluation", "Metric aggregates", "Features", "Registry", "Pipelines", "Misc"]

Q = """
SELECT p.proname, p.prokind, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
       pg_get_function_identity_arguments(p.oid),
       p.provolatile, p.proparallel, p.prosecdef,
       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
       ARRAY(SELECT r FROM unnest(%s::text[]) WITH ORDINALITY u(r, o)
              WHERE EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                             WHERE a.grantee = r::regrole AND a.privilege_type = 'EXECUTE') ORDER BY o)
  FROM pg_proc p
 WHERE p.pronamespace = 'mlpipe'::regnamespace AND p.proname !~ '^_'
 ORDER BY p.proname, pg_get_function_arguments(p.oid)"""


def main():
    conn = psycopg2.connect("")
    cur = conn.cursor()
    cur.execute(Q, (ROLES,))
    funcs = {}
    for name, kind, args, res, ident, vol, par, secdef, public, roles in cur.fetchall():
        funcs.setdefault(name, []).append((kind, args, res, ident, vol, par, secdef, public, roles))
    missing = sorted(set(funcs) - set(PAGES))
    if missing:
        raise SystemExit("no page text for: " + ", ".join(missing))
    for name, forms in funcs.items():
        pg = PAGES[name]
        lines = ["# mlpipe.%s" % name, "", pg["summary"], "", "## Signature%s" % ("s" if len(forms) > 1 else ""), ""]
        lines.append("```sql")
        for kind, args, res, ident, vol, par, secdef, public, roles in forms:
            if kind == "a":
                lines.append("AGGREGATE mlpipe.%s(%s) -- %s" % (name, args, PAR[par]))
            else:
                lines.append("mlpipe.%s(%s)\n    RETURNS %s -- %s, %s%s"
                             % (name, args, res, VOL[vol], PAR[par], ", SECURITY DEFINER" if secdef else ""))
        lines += ["```", "", "## Arguments", "", pg["args"], "", "## Returns", "", pg["returns"], "",
                  "## Privileges", ""]
        # The privilege lines name each form by its full argument list without
        # defaults (the identity arguments): cutting the signature at its first
        # DEFAULT would drop every argument after it.
        for kind, args, res, ident, vol, par, secdef, public, roles in forms:
            who = "PUBLIC" if public else ("`%s` and the roles above it" % roles[0] if roles else "owner only")
            lines.append("- `%s(%s)`: %s" % (name, ident, who))
        lines += ["", "Roles: mlpipe_reader < mlpipe_scorer < mlpipe_trainer < mlpipe_admin (each includes the previous); "
                  "see [../security.md](../security.md).", "", "## Errors", "", pg["errors"], "", "## Example", "",
                  "```sql", pg["example"].replace("%s", name), "```", "", "See also: [%s](%s)." % (pg["see"][3:], pg["see"]), ""]
        open(os.path.join(HERE, name + ".md"), "w").write("\n".join(lines))
    idx = ["# SQL function reference (mlpipe 0.3.0)", "",
           "One page per SQL function of schema `mlpipe`, overloads together. Signatures, defaults, volatility and",
           "privileges are generated from the installed extension by `gen_reference.py` (in this folder);",
           "errors use the SQLSTATEs of ARCHITECTURE.md (22023 bad parameter, 22032 bad JSON config, 22000 data,",
           "54000 limit, 55000 pg_cron missing, 42704 unknown model/alias/pipeline, 42501 privilege, XX001",
           "corrupt artifact). Functions starting with `_` are internal and not part of the API.", ""]
    for area in AREAS:
        idx += ["## " + area, ""]
        for name in sorted(n for n in funcs if PAGES[n]["area"] == area):
            idx.append("- [mlpipe.%s](%s.md): %s" % (name, name, PAGES[name]["summary"].split(". ")[0].rstrip(".") + "."))
        idx.append("")
    idx += ["## Not built", "",
            "- `mlpipe.import(model text, doc jsonb) RETURNS int` is in the API contract (API.md) but not in 0.3.0:",
            "  there is no way yet to register a version from an `export` document.", ""]
    open(os.path.join(HERE, "README.md"), "w").write("\n".join(idx))
    print("wrote %d pages" % len(funcs))


if __name__ == "__main__":
    main()
