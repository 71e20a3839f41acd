"""issue10_search_path.py: issue #10 item 1, search_path hijack.

Plants shadowing objects for every pg_catalog function and aggregate name
that mlpipe's SQL (sql/ and the SPI strings in src/) calls, with concrete
argument types that beat pg_catalog's polymorphic / "any" / implicitly cast
overloads (array_position(text[], text), format(text, text), ...), and
operators (||, =, <, ->>, @>, ...) for type pairs pg_catalog has no exact
operator for, in schema public (on every caller's search_path) and in
pg_temp. Every planted function records that it ran (a row in
public.hijack_log, and a WARNING 'mlpipe-hijack' that survives a rollback).
Then every entry point of schema mlpipe runs as a superuser: a valid call of
each function (from fuzz.py's generator) plus a curated set (train with every
algorithm on a text column and preprocessing, predict_table in every mode,
evaluate, cross_validate, search, drift, run_pipeline, registry operations).
Assertion: nothing planted ran. Output: one line per entry point that ran a
planted object, and the full list in build/torture/search_path_hijack.txt."""
import itertools
import os
import random
import re
import glob

import psycopg2

import tlib
import fuzz

DB = "torture_i1"
XFAIL = "issue #10 item 1: invoker functions resolve unqualified names through the caller's search_path"
TYPES = ["text", "integer", "bigint", "double precision", "numeric", "boolean", "jsonb",
         "text[]", "double precision[]", "bigint[]", "integer[]", "name", "bytea", "regclass"]
POLY = {"anyelement", "anynonarray", "anyarray", "anycompatible", "anycompatiblearray",
        "anycompatiblenonarray", '"any"', "anyenum"}
ARRAYS = {"anyarray", "anycompatiblearray"}
NUMERIC = ["integer", "bigint", "double precision", "numeric", "real", "smallint"]
TEXTISH = ["text", "name", "character varying"]
OPS = ["||", "=", "<>", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "->", "->>", "#>", "#>>",
       "@>", "<@", "?", "~", "~~", "^"]
CAP = 120


def called_names():
    """Identifiers followed by '(' in mlpipe's SQL scripts and C sources."""
    names = set()
    for f in glob.glob(os.path.join(tlib.ROOT, "sql", "**", "*.sql"), recursive=True) + \
            glob.glob(os.path.join(tlib.ROOT, "src", "**", "*.c"), recursive=True):
        names |= set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*\(", open(f, errors="replace").read()))
    return names


def body(sig, setof, delegate=None, rt=None):
    """A planted function's body: records that it ran, then returns what the
    pg_catalog original would (delegate: its call over $1..$n), so that the
    caller carries on and later plants get their chance too."""
    lit = sig.replace("'", "''")
    ret = "RETURN;" if setof else "RETURN NULL;"
    if delegate and setof and rt and rt.startswith("TABLE"):
        ret = "RETURN QUERY SELECT * FROM %s; RETURN;" % delegate
    elif delegate and setof:
        ret = "RETURN QUERY SELECT (%s)::%s; RETURN;" % (delegate, rt.replace("SETOF ", ""))
    elif delegate and rt == "void":
        ret = "PERFORM %s; RETURN;" % delegate
    elif delegate:
        ret = "RETURN (%s)::%s;" % (delegate, rt)
    return ("BEGIN RAISE WARNING 'mlpipe-hijack %%', '%s'; "
            "BEGIN INSERT INTO public.hijack_log (fn, usr, query) VALUES ('%s', current_user, current_query()); "
            "EXCEPTION WHEN OTHERS THEN NULL; END; %s END" % (lit, lit, ret))


def variants(argtypes, rng):
    """Concrete argument lists that shadow a pg_catalog signature."""
    choices = []
    for t in argtypes:
        if t in POLY:
            choices.append([x for x in TYPES if x.endswith("[]")] if t in ARRAYS else TYPES)
        elif t in NUMERIC:
            choices.append([t] + [x for x in NUMERIC if x != t])
        elif t in TEXTISH:
            choices.append([t] + [x for x in TEXTISH if x != t])
        else:
            choices.append([t])
    # first the consistent ones (anyarray -> T[], anyelement -> T for each T:
    # array_position(text[], text), ...), then a sample of the rest
    scalars = [t for t in TYPES if not t.endswith("[]")]
    first = []
    for b in scalars:
        first.append(tuple((b + "[]" if t in ("anyarray", "anycompatiblearray") else b) if t in POLY
                           or t in ("anyarray", "anycompatiblearray") else t for t in argtypes))
    combos = list(itertools.islice(itertools.product(*choices), 5000))
    combos = [c for c in combos if list(c) != list(argtypes) and c not in first]
    if len(combos) > CAP:
        combos = rng.sample(combos, CAP)
    return [c for c in first if list(c) != list(argtypes)] + combos


def ret_type(rettype, args):
    if rettype in POLY or rettype in ("anyarray", "anycompatiblearray"):
        if rettype.endswith("array"):
            arr = [a for a in args if a.endswith("[]")]
            return arr[0] if arr else "text[]"
        return args[0] if args else "text"
    return rettype


def plant(cur, what):
    """Plants shadowing functions and aggregates (what = 'functions') or
    operators (what = 'operators'); returns how many."""
    rng = random.Random(1)
    names = sorted(called_names())
    cur.execute("""SELECT p.proname, p.prokind, p.proretset,
                          ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o) ORDER BY o),
                          format_type(p.prorettype, NULL), p.provariadic <> 0,
                          pg_get_function_result(p.oid)
                     FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
                      AND p.proname = ANY(%s) AND p.prokind IN ('f', 'a')""", (names,))
    planted = 0
    seen = set()
    if what != 'functions':
        cur.fetchall()
        return plant_operators(cur)
    for proname, kind, setof, argtypes, rettype, variadic, result in cur.fetchall():
        if variadic:  # format(text, VARIADIC "any") and friends: 1 to 3 trailing args
            base = argtypes[:-1]
            last = argtypes[-1]
            lastt = '"any"' if last == '"any"' else last.replace("[]", "")
            cand = [base + [lastt] * k for k in range(0, 4)]
        else:
            cand = [argtypes]
        for a in cand:
            for combo in ([tuple(a)] if variadic else []) + variants(a, rng):
                combo = ['text' if t == '"any"' else t for t in combo]
                if any(t in POLY or t in ("internal", "cstring", "record", "anyrange", "anymultirange")
                       for t in combo):
                    continue
                key = (proname, tuple(combo))
                if key in seen:
                    continue
                seen.add(key)
                sig = "%s(%s)" % (proname, ", ".join(combo))
                for schema in ("public", "pg_temp"):
                    try:
                        cur.execute("SAVEPOINT p")
                        if kind == "a":
                            sf = "%s._hj_sf_%d" % (schema, planted)
                            cur.execute("CREATE FUNCTION %s(text, %s) RETURNS text LANGUAGE plpgsql AS $b$%s$b$"
                                        % (sf, ", ".join(combo), body("aggregate " + sig, False)))
                            cur.execute("CREATE AGGREGATE %s.%s(%s) (sfunc = %s, stype = text)"
                                        % (schema, proname, ", ".join(combo), sf))
                        else:
                            rt = result if (setof and "TABLE" in result) else ret_type(rettype, combo)
                            if setof and "TABLE" not in result:
                                rt = "SETOF " + ret_type(rettype, combo)
                            if rt in ("record", "SETOF record", "void", "trigger", "internal", "cstring"):
                                rt = {"void": "void"}.get(rt, "text")
                            args = ", ".join("$%d" % (k + 1) for k in range(len(combo)))
                            b = body(sig, setof, "pg_catalog.%s(%s)" % (proname, args), rt)
                            cur.execute("CREATE FUNCTION %s.%s(%s) RETURNS %s LANGUAGE plpgsql AS $b$%s$b$"
                                        % (schema, proname, ", ".join(combo), rt, b))
                        cur.execute("RELEASE SAVEPOINT p")
                        planted += 1
                    except psycopg2.Error:
                        cur.execute("ROLLBACK TO SAVEPOINT p")
    return planted


def plant_operators(cur):
    cur.execute("""SELECT oprname, format_type(oprleft, NULL), format_type(oprright, NULL)
                     FROM pg_operator WHERE oprnamespace = 'pg_catalog'::regnamespace""")
    exact = set(cur.fetchall())
    ops = 0
    for op in OPS:
        for l, r in itertools.product(TYPES, TYPES):
            if (op, l, r) in exact:
                continue
            rt = "boolean"
            if op == "||":
                rt = l if l.endswith("[]") else (r if r.endswith("[]") else "text")
            elif op in ("+", "-", "*", "/", "%", "^"):
                rt = l
            elif op in ("->", "#>"):
                rt = "jsonb"
            elif op in ("->>", "#>>"):
                rt = "text"
            sig = "operator %s(%s, %s)" % (op, l, r)
            fn = "_hj_op_%d" % ops
            for schema in ("public", "pg_temp"):
                try:
                    cur.execute("SAVEPOINT p")
                    cur.execute("CREATE FUNCTION %s.%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS $b$%s$b$"
                                % (schema, fn, l, r, rt,
                                   body(sig, False, "$1 OPERATOR(pg_catalog.%s) $2" % op, rt)))
                    cur.execute("CREATE OPERATOR %s.%s (leftarg = %s, rightarg = %s, function = %s.%s)"
                                % (schema, op, l, r, schema, fn))
                    cur.execute("RELEASE SAVEPOINT p")
                    ops += 1
                except psycopg2.Error:
                    cur.execute("ROLLBACK TO SAVEPOINT p")
    return ops


CURATED = [
    "SELECT * FROM mlpipe.train('h_km', 'kmeans', 'public.tdata', NULL, ARRAY['a','b','c'], '{\"k\": 3, \"seed\": 1}')",
    "SELECT * FROM mlpipe.train('h_mb', 'minibatch_kmeans', 'public.tdata', NULL, NULL, '{\"k\": 2, \"seed\": 1, \"exclude\": [\"id\", \"y\", \"yr\"]}')",
    "SELECT * FROM mlpipe.train('h_dt', 'decision_tree', 'public.tdata', 'y', ARRAY['a','b','c'], '{\"seed\": 1, \"preprocess\": {\"*\": {\"impute\": \"median\", \"scale\": \"robust\"}, \"c\": {\"encode\": \"target\"}}}', '{\"metric\": \"accuracy\", \"min\": 0.1}')",
    "SELECT * FROM mlpipe.train('h_rf', 'random_forest', 'public.tdata', 'y', ARRAY['a','b','c'], '{\"seed\": 1, \"n_estimators\": 3, \"split\": \"stratified\", \"preprocess\": {\"c\": {\"encode\": \"ordinal\"}}}')",
    "SELECT * FROM mlpipe.train('h_gb', 'gbt', 'public.tdata', 'yr', ARRAY['a','b','c'], '{\"seed\": 1, \"n_estimators\": 3, \"split\": \"time:id\", \"preprocess\": {\"*\": {\"scale\": \"minmax\"}, \"c\": {\"encode\": \"onehot\"}}}')",
    "SELECT * FROM mlpipe.train('h_gb2', 'gbt', 'SELECT * FROM public.tdata', 'y', ARRAY['a','b','c'], '{\"seed\": 1, \"n_estimators\": 3, \"split\": \"column:flag\"}')",
    "SELECT * FROM mlpipe.train('h_g', 'decision_tree', 'public.tdata', 'y', ARRAY['a','b','c'], '{\"seed\": 1, \"group_by\": \"flag\", \"min_rows_per_group\": 1, \"fallback\": \"h_dt\"}')",
    "SELECT mlpipe.predict('h_g', t), mlpipe.predict_label('h_g', t), mlpipe.predict_proba('h_g', t) FROM public.tdata t LIMIT 3",
    "SELECT mlpipe.group_model_name('h_g', ARRAY['a/b', 'c@d'])",
    "SELECT mlpipe.drop_grouped_model('h_g')",
    "SELECT mlpipe.predict('dt', t), mlpipe.predict_label('dt', t), mlpipe.predict_proba('dt', t) FROM public.tdata t LIMIT 3",
    "SELECT mlpipe.predict('km', t), mlpipe.predict(mlpipe.artifact('gb'), t) FROM public.tdata t LIMIT 3",
    "SELECT mlpipe.predict_table('dt', 'public.tdata', 'public.h_out1', 'id', 'append')",
    "SELECT mlpipe.predict_table('dt', 'public.tdata', 'public.h_out1', 'id', 'append')",
    "SELECT mlpipe.predict_table('km', 'public.tdata', 'public.h_out2', 'id', 'replace')",
    "SELECT mlpipe.predict_table('rf', 'SELECT * FROM public.tdata', 'public.h_out3', 'id', 'upsert')",
    "SELECT mlpipe.predict_table('rf', 'SELECT * FROM public.tdata', 'public.h_out3', 'id', 'upsert')",
    "SELECT mlpipe.predict_table('gb', 'public.tdata', 'public.h_out4', 'id', 'incremental')",
    "SELECT mlpipe.predict_table('km', 'SELECT id, CASE WHEN id = 3 THEN NULL ELSE a END AS a, b, c FROM public.tdata', target_table => 'public.h_out5', key => 'id', params => '{\"drift_sample\": 5}', on_null => 'skip')",
    "SELECT mlpipe.predict_table('km', 'SELECT id, CASE WHEN id = 3 THEN NULL ELSE a END AS a, b, c FROM public.tdata', target_table => 'public.h_out6', key => 'id', on_null => 'null')",
    "SELECT mlpipe.predict_table('km', 'SELECT id, CASE WHEN id = 3 THEN NULL ELSE a END AS a, b, c FROM public.tdata', target_table => 'public.h_out7', key => 'id')",
    "SELECT mlpipe.proba_json(mlpipe.classes('dt'), mlpipe.predict_proba('dt', t)) FROM public.tdata t LIMIT 3",
    "SELECT mlpipe.evaluate('dt', 'public.tdata')",
    "SELECT mlpipe.evaluate('km', 'public.tdata')",
    "SELECT mlpipe.evaluate('gb', 'public.tdata')",
    "SELECT mlpipe.cross_validate('random_forest', 'public.tdata', 'y', ARRAY['a','b','c'], '{\"n_estimators\": 2, \"seed\": 1}', 3)",
    "SELECT mlpipe.cross_validate('kmeans', 'public.tdata', NULL, ARRAY['a','b','c'], '{\"k\": 2}', 2)",
    "SELECT * FROM mlpipe.search('h_s', 'decision_tree', 'public.tdata', 'y', ARRAY['a','b','c'], '{\"max_depth\": [2, 3]}', 'grid', 2)",
    "SELECT * FROM mlpipe.search('h_s2', 'gbt', 'public.tdata', 'yr', ARRAY['a','b','c'], '{\"max_depth\": [2, 3], \"learning_rate\": [0.1, 0.3]}', 'random', 2, 2)",
    "SELECT * FROM mlpipe.drift('dt', 'public.tdata')",
    "SELECT mlpipe.create_pipeline('h_p', '{\"steps\": [{\"kind\": \"train\", \"name\": \"t\", \"model\": \"h_pm\", \"algorithm\": \"decision_tree\", \"source\": \"public.tdata\", \"target\": \"y\", \"features\": [\"a\", \"b\", \"c\"]}, {\"kind\": \"predict\", \"name\": \"p\", \"model\": \"h_pm\", \"source\": \"public.tdata\", \"into\": \"public.h_pout\", \"key\": \"id\", \"mode\": \"replace\"}, {\"kind\": \"evaluate\", \"name\": \"e\", \"model\": \"h_pm\", \"source\": \"public.tdata\"}, {\"kind\": \"drift\", \"name\": \"d\", \"model\": \"h_pm\", \"source\": \"public.tdata\"}]}'::jsonb)",
    "SELECT mlpipe.run_pipeline('h_p')",
    "SELECT mlpipe.promote('dt', 1, 'staging', 'x')",
    "SELECT mlpipe.rollback('dt', 'staging')",
    "SELECT mlpipe.tag('dt', 1, 'k', 'v')",
    "SELECT mlpipe.version_at('dt', now())",
    "SELECT mlpipe.prune('dt', 1)",
    "SELECT mlpipe.export('rf')",
    "SELECT mlpipe.import('h_imp', mlpipe.export('dt'))",
    "SELECT * FROM mlpipe.feature_importance('gb')",
    "SELECT mlpipe.model_info('dt'), mlpipe.features('km'), mlpipe.classes('rf'), mlpipe.profile('dt')",
    "SELECT (mlpipe.ts_features(now() + id * interval '1 min', a)).*, (mlpipe.summary(b)).* FROM public.tdata",
    "SELECT mlpipe.roc_auc(y = 'yes', a), mlpipe.f1_macro(y, c), mlpipe.rmse(a, b), mlpipe.silhouette(ARRAY[a, b], id % 3), mlpipe.confusion_matrix(y, c), mlpipe.log_loss(y, ARRAY[0.4, 0.6], ARRAY['no','yes']) FROM public.tdata",
    "SELECT mlpipe.drop_pipeline('h_p')",
]


def run_calls(conn, cur, calls):
    """{sql: (outcome, [planted objects that ran])}, each call in a savepoint."""
    out = {}
    for sql in calls:
        del conn.notices[:]
        cur.execute("SAVEPOINT c")
        try:
            cur.execute(sql)
            outcome = "ok"
            cur.execute("RELEASE SAVEPOINT c")
        except psycopg2.Error as e:
            outcome = "%s %s" % (e.pgcode, (e.pgerror or "").splitlines()[0] if e.pgerror else "")
            cur.execute("ROLLBACK TO SAVEPOINT c")
        ran = sorted(set(n.strip().replace("WARNING:  mlpipe-hijack ", "")
                         for n in conn.notices if "mlpipe-hijack" in n))
        out[sql] = (outcome, ran)
    return out


def main():
    tlib.setup_models(DB)
    conn = tlib.connect(DB)
    cur = conn.cursor()
    cur.execute("ALTER TABLE public.tdata ADD COLUMN flag boolean")
    cur.execute("UPDATE public.tdata SET flag = id % 5 = 0")
    cur.execute("CREATE TABLE public.hijack_log (fn text, usr name, query text, at timestamptz DEFAULT clock_timestamp())")
    cur.execute("GRANT ALL ON public.hijack_log TO PUBLIC")
    rng = random.Random(3)
    calls = list(CURATED)
    procs = fuzz.entry_points(cur)
    for sig, name, kind, types, argnames in procs:
        for _ in range(2):
            calls.append(fuzz.build(rng, name, kind, types, argnames, 0)[0])
    conn.autocommit = False
    cur.execute("SET mlpipe.progress = off; SET statement_timeout = '20s'; SET client_min_messages = warning")
    # every phase starts from the same state: one transaction each, rolled back
    base = run_calls(conn, cur, calls)
    conn.rollback()
    hits, changed = {}, {}
    for what in ("functions", "operators"):
        cur.execute("SET mlpipe.progress = off; SET statement_timeout = '20s'; SET client_min_messages = warning")
        n = plant(cur, what)
        res = run_calls(conn, cur, calls)
        conn.rollback()
        print("# search_path: planted %d %s (public and pg_temp)" % (n, what))
        for sql, (outcome, ran) in res.items():
            if ran:
                hits.setdefault(sql, set()).update(ran)
            if outcome != base[sql][0]:
                changed[sql] = "with planted %s: %s (without: %s)" % (what, outcome, base[sql][0])
    with open(os.path.join(tlib.OUT, "search_path_hijack.txt"), "w") as f:
        for sql, ran in hits.items():
            f.write("RAN PLANTED: %s\n    %s\n" % (sql, "; ".join(sorted(ran))))
        for sql, why in changed.items():
            f.write("RESOLUTION CHANGED: %s\n    %s\n" % (sql, why))
    entry = {}
    for sql in set(hits) | set(changed):
        m = re.search(r"mlpipe\.(\w+)\(", sql)
        entry.setdefault(m.group(1) if m else sql[:40], []).append(
            "ran " + "; ".join(sorted(hits[sql])) if sql in hits else changed[sql])
    for e, what in sorted(entry.items()):
        tlib.result(False, "issue10 search_path: %s is not affected by planted objects" % e,
                    " | ".join(what)[:400])
    tlib.result(not hits and not changed,
                "issue10 search_path: %d calls of every entry point as superuser ran nothing planted" % len(calls),
                "%d calls ran planted objects, %d behaved differently (see build/torture/search_path_hijack.txt)"
                % (len(hits), len(changed)))
    ok = sum(1 for o, r in base.values() if o == "ok")
    print("# search_path: %d calls (%d succeed without plants), %d ran planted objects, %d changed behaviour"
          % (len(calls), ok, len(hits), len(changed)))
    tlib.finish()


if __name__ == "__main__":
    main()
