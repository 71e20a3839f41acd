#!/usr/bin/python3
"""run_docs.py: runs the SQL examples of the documentation as a test suite.

Usage: run_docs.py [PAGE.md ...]   (default: README.md, docs/*.md, docs/guides/*.md)

For each page it creates a fresh database with mlpipe, runs the page's
loading steps and then every ```sql block, in page order, each block in its
own psql session (psql -X -q, ON_ERROR_STOP), and prints one line per block:

    PASS|FAIL|XFAIL|XPASS|SKIP  page:line  what

Markers (HTML comments in the page source, just before the block they are
about; a marker applies to the next fenced block):

  <!-- not-run: REASON -->     the block is not run (SKIP, with the reason)
  <!-- xfail: REASON -->       the block is expected to fail (a known defect):
                               XFAIL when it fails, XPASS when it passes
  <!-- doctest: load -->       a ```sh block to run as a loading step (bash,
                               from the project folder); shell blocks without
                               it are not run
  <!-- output: volatile REASON -->  the output block after the SQL block is
                               not compared (timings, ...)

Page markers (anywhere in the page):

  <!-- doctest: cron -->       the page needs pg_cron: it runs in the database
                               pg_cron serves (cron.database_name, `mlpipe` in
                               the cluster of scripts/pg.sh), which is dropped
                               and created again first, since CREATE EXTENSION
                               pg_cron works in that database only
  <!-- doctest: after PAGE --> run PAGE's loading steps and SQL blocks first,
                               in the same database (PAGE relative to the
                               project folder); not reported

Run without arguments it also regenerates docs/reference with
docs/reference/gen_reference.py into a temporary folder and compares: one
PASS/FAIL line.

Output: a ```text block (or an unlabelled ``` block) right after a SQL block
is its output. The psql output of the block must contain its lines in order
(trailing blanks ignored); a line `...` (indented or not) stands for any
number of lines.

In both SQL and shell blocks `../shared/data` is replaced by $MLPIPE_DATA
(default: ../shared/data from the project folder); in shell blocks the line
`eval "$(scripts/pg.sh env)"` is dropped (the runner has set PG* already to
the page's database). Time is bounded per block (MLPIPE_DOCTEST_TIMEOUT
seconds, default 900) by a statement_timeout and by killing psql.
MLPIPE_DOCTEST_KEEP=1 keeps the page databases; MLPIPE_DOCTEST_SHOW=1 prints
each SQL block's output (to write an output block from). Exit status 1 when any block
FAILs.
"""

import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DATA = os.environ.get('MLPIPE_DATA') or os.path.join(os.path.dirname(ROOT), 'shared', 'data')
TIMEOUT = int(os.environ.get('MLPIPE_DOCTEST_TIMEOUT', '900'))
KEEP = os.environ.get('MLPIPE_DOCTEST_KEEP') == '1'
SHOW = os.environ.get('MLPIPE_DOCTEST_SHOW') == '1'

MARKER = re.compile(r'<!--\s*(not-run|xfail|doctest|output)\s*:\s*(.*?)\s*-->')
FENCE = re.compile(r'^```\s*([A-Za-z0-9_+-]*)\s*$')
ENV_LINE = re.compile(r'^\s*eval\s+"\$\((bash\s+)?(\./)?scripts/pg\.sh env\)"\s*(#.*)?$')


class Block:
    """One fenced block of a page with the markers that precede it."""

    def __init__(self, lang, line, text, markers):
        self.lang = lang
        self.line = line
        self.text = text
        self.markers = markers  # list of (kind, value)
        self.output = None      # the output Block that follows, for SQL

    def marker(self, kind, prefix=''):
        """The value of the first marker of this kind (starting with prefix), or None."""
        for k, v in self.markers:
            if k == kind and v.startswith(prefix):
                return v
        return None


def parse(path):
    """The fenced blocks and page markers of a markdown page."""
    blocks, page_markers, pending = [], [], []
    lines = open(path, encoding='utf-8').read().split('\n')
    i = 0
    gap_since_block = None  # lines between the last block and now are blank/markers only
    while i < len(lines):
        line = lines[i]
        for kind, value in MARKER.findall(line):
            if kind == 'doctest' and (value == 'cron' or value.startswith('after ')):
                page_markers.append(value)
            else:
                pending.append((kind, value))
        m = FENCE.match(line)
        if m:
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith('```'):
                j += 1
            block = Block(m.group(1).lower(), start, '\n'.join(lines[start:j]) + '\n', pending)
            prev = blocks[-1] if blocks else None
            if (block.lang in ('', 'text') and prev is not None and prev.lang == 'sql'
                    and gap_since_block is not None and gap_since_block):
                prev.output = block
            blocks.append(block)
            pending = []
            gap_since_block = True
            i = j + 1
            continue
        if gap_since_block is not None and line.strip() and not MARKER.search(line):
            gap_since_block = False
        i += 1
    return blocks, page_markers


def psql_env(db):
    """The environment for psql and shell steps on database db."""
    env = dict(os.environ)
    env['PGDATABASE'] = db
    env['MLPIPE_DATA'] = DATA
    env['PGOPTIONS'] = (env.get('PGOPTIONS', '') + ' -c statement_timeout=%ds' % TIMEOUT).strip()
    return env


def admin(sql, db='postgres'):
    """Runs an administrative statement; raises on failure."""
    subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql],
                   check=True, capture_output=True, text=True, env=psql_env(db))


def fresh_database(db, cron):
    """Drops and creates db, with mlpipe (and pg_cron when cron)."""
    admin('SET client_min_messages = warning')
    admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    admin('CREATE DATABASE "%s"' % db)
    if cron:
        admin('CREATE EXTENSION pg_cron', db)
    admin('CREATE EXTENSION mlpipe', db)


def data_paths(text):
    """Points ../shared/data at the data folder in use."""
    return text.replace('../shared/data', DATA)


def run_sql(block, db):
    """Runs a SQL block; returns (ok, stdout, stderr)."""
    try:
        p = subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-P', 'pager=off', '-f', '-'],
                           input=data_paths(block.text), capture_output=True, text=True,
                           cwd=ROOT, env=psql_env(db), timeout=TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        return False, '', 'timed out after %d s' % TIMEOUT
    return p.returncode == 0, p.stdout, p.stderr


def run_shell(block, db):
    """Runs a shell loading block with bash -e from the project folder."""
    script = '\n'.join(l for l in data_paths(block.text).split('\n') if not ENV_LINE.match(l))
    try:
        p = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', script], capture_output=True,
                           text=True, cwd=ROOT, env=psql_env(db), timeout=TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        return False, '', 'timed out after %d s' % TIMEOUT
    return p.returncode == 0, p.stdout, p.stderr


def output_matches(expected, actual):
    """Whether actual contains the expected lines in order (`...` = any lines)."""
    exp = [l.rstrip() for l in expected.rstrip('\n').split('\n')]
    exp = ['...' if l.strip() == '...' else l for l in exp]
    act = [l.rstrip() for l in actual.split('\n')]
    while exp and exp[0] == '...':
        exp.pop(0)

    def match(ei, ai):
        if ei == len(exp):
            return True
        if exp[ei] == '...':
            return any(match(ei + 1, k) for k in range(ai, len(act) + 1))
        return ai < len(act) and act[ai] == exp[ei] and match(ei + 1, ai + 1)

    return any(match(0, start) for start in range(len(act) + 1))


def first_line(text):
    """The first non-comment, non-blank line of a block, shortened."""
    for l in text.split('\n'):
        s = l.strip()
        if s and not s.startswith('--') and not s.startswith('#') and not ENV_LINE.match(s) \
                and not s.upper().startswith('SET '):
            return s[:60]
    return ''


def brief(text, n=12):
    """The last n lines of text, indented, for a failure report."""
    lines = [l for l in text.rstrip().split('\n') if l.strip()][-n:]
    return ''.join('    | %s\n' % l for l in lines)


def run_page(page, db, report=True, counts=None):
    """Runs the loading steps and SQL blocks of page in db; returns the counts."""
    counts = counts if counts is not None else {}
    blocks, _ = parse(os.path.join(ROOT, page))
    for b in blocks:
        where = '%s:%d' % (page, b.line)
        what = first_line(b.text)
        if b.lang in ('sh', 'bash', 'shell'):
            if b.marker('doctest', 'load') is None:
                continue
            ok, out, err = run_shell(b, db)
            status = 'PASS' if ok else 'FAIL'
            detail = '' if ok else brief(err or out)
        elif b.lang == 'sql':
            reason = b.marker('not-run')
            if reason is not None:
                if report:
                    print('SKIP  %s  not run: %s' % (where, reason))
                    counts['SKIP'] = counts.get('SKIP', 0) + 1
                continue
            t0 = time.time()
            ok, out, err = run_sql(b, db)
            detail = ''
            if SHOW and report:
                print(''.join('    > %s\n' % l.rstrip() for l in out.rstrip('\n').split('\n')), end='')
            if not ok:
                detail = brief(err or out)
            elif b.output is not None and b.output.marker('output', 'volatile') is None \
                    and b.marker('output', 'volatile') is None:
                if not output_matches(b.output.text, out):
                    ok = False
                    detail = '    | output differs; expected (line %d):\n%s    | got:\n%s' % (
                        b.output.line, brief(b.output.text, 20), brief(out, 30))
            what = '%s (%.1f s)' % (what, time.time() - t0)
            xfail = b.marker('xfail')
            if xfail is not None:
                status = 'XPASS' if ok else 'XFAIL'
                what += ' [xfail: %s]' % xfail
                if not ok:
                    detail = brief(detail, 3)
            else:
                status = 'PASS' if ok else 'FAIL'
        else:
            continue
        if not report:
            if status == 'FAIL':
                print('FAIL  %s  (setup for another page) %s' % (where, what))
                print(detail, end='')
                counts['FAIL'] = counts.get('FAIL', 0) + 1
            continue
        print('%-5s %s  %s' % (status, where, what))
        if detail and status in ('FAIL', 'XPASS', 'XFAIL'):
            print(detail, end='')
        counts[status] = counts.get(status, 0) + 1
        sys.stdout.flush()
    return counts


def check_reference():
    """Regenerates docs/reference into a temporary folder from a fresh database
    with mlpipe and compares it with the pages in the repository; returns the
    number of failures (0 or 1)."""
    import filecmp
    import shutil
    import tempfile
    db = 'doctest_reference'
    out = tempfile.mkdtemp(prefix='mlpipe-ref.')
    try:
        fresh_database(db, False)
        p = subprocess.run(['/usr/bin/python3', os.path.join(ROOT, 'docs/reference/gen_reference.py'), out],
                           capture_output=True, text=True, env=psql_env(db), timeout=TIMEOUT)
        if p.returncode != 0:
            print('FAIL  docs/reference  gen_reference.py: %s' % (p.stderr.strip() or p.stdout.strip()))
            return 1
        ref = os.path.join(ROOT, 'docs/reference')
        names = sorted(set(f for f in os.listdir(out) if f.endswith('.md'))
                       | set(f for f in os.listdir(ref) if f.endswith('.md')))
        stale = [n for n in names if not (os.path.exists(os.path.join(ref, n)) and os.path.exists(os.path.join(out, n))
                                          and filecmp.cmp(os.path.join(ref, n), os.path.join(out, n), shallow=False))]
        if stale:
            print('FAIL  docs/reference  pages differ from what gen_reference.py makes of the installed '
                  'extension (run it to update): %s' % ', '.join(stale))
            return 1
        print('PASS  docs/reference  %d pages match gen_reference.py on the installed extension' % len(names))
        return 0
    except subprocess.CalledProcessError as e:
        print('FAIL  docs/reference  fresh database: %s' % e.stderr.strip())
        return 1
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if not KEEP:
            subprocess.run(['psql', '-X', '-q', '-d', 'postgres', '-c', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db],
                           capture_output=True, env=psql_env('postgres'))


def main():
    pages = sys.argv[1:] or (['README.md'] + sorted(glob.glob('docs/*.md', root_dir=ROOT))
                             + sorted(glob.glob('docs/guides/*.md', root_dir=ROOT)))
    cron_db = subprocess.run(['psql', '-X', '-At', '-d', 'postgres', '-c', 'SHOW cron.database_name'],
                             capture_output=True, text=True, env=psql_env('postgres')).stdout.strip()
    failed = 0
    if not sys.argv[1:]:
        print('# docs/reference (generated pages)')
        failed += check_reference()
    for page in pages:
        page = os.path.relpath(os.path.abspath(page), ROOT) if os.path.exists(page) else page
        blocks, page_markers = parse(os.path.join(ROOT, page))
        if not any(b.lang == 'sql' for b in blocks):
            print('# %s: no SQL blocks' % page)
            continue
        before = [m[len('after '):].strip() for m in page_markers if m.startswith('after ')]
        cron = 'cron' in page_markers or any('cron' in parse(os.path.join(ROOT, p))[1] for p in before)
        if cron and not cron_db:
            print('SKIP  %s  the page needs pg_cron, which is not preloaded here' % page)
            continue
        db = cron_db if cron else 'doctest_' + re.sub(r'[^a-z0-9]+', '_', page.lower().replace('.md', ''))
        print('# %s (database %s)' % (page, db))
        t0 = time.time()
        try:
            fresh_database(db, cron)
        except subprocess.CalledProcessError as e:
            print('FAIL  %s  fresh database %s: %s' % (page, db, e.stderr.strip()))
            failed += 1
            continue
        counts = {}
        for p in before:
            run_page(p, db, report=False, counts=counts)
        run_page(page, db, counts=counts)
        if cron:
            subprocess.run(['psql', '-X', '-q', '-d', db, '-c', 'SELECT cron.unschedule(jobid) FROM cron.job'],
                           capture_output=True, env=psql_env(db))
        elif not KEEP:
            subprocess.run(['psql', '-X', '-q', '-d', 'postgres', '-c', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db],
                           capture_output=True, env=psql_env('postgres'))
        failed += counts.get('FAIL', 0)
        print('# %s: %s in %.0f s' % (page, ', '.join('%d %s' % (v, k) for k, v in sorted(counts.items())) or 'nothing run',
                                       time.time() - t0))
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
