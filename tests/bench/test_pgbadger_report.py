"""`make report` (bench/pgbadger_report.py): what makes a run fail, and its screenshot.

The whole run (a scratch database, gunicorn, Locust, pgBadger) is `make
report` itself, which CI runs; here, on a few log lines, the checks that
decide whether its report is worth keeping.
"""

import pytest

from bench import pgbadger_report
from shop import pglog

needs_pgbadger = pytest.mark.skipif(
    pglog.pgbadger_path() is None,
    reason="pgbadger is not installed: apt-get install pgbadger (.ci/run does)",
)


def test_a_report_that_counts_no_queries_fails_the_run(tmp_path):
    html = tmp_path / "pgbadger.html"
    html.write_text(
        '<span class="figure">0</span> '
        '<span class="figure-label">Number of queries</span>'
        '<table id="time-consuming-queries-table"></table>',
        encoding="utf-8",
    )

    with pytest.raises(pgbadger_report.ReportFailed, match="lists no queries"):
        pgbadger_report.check_report(html)


@needs_pgbadger
@pytest.mark.django_db
def test_the_screenshot_page_opens_pgbadgers_report_on_its_top_queries(tmp_path):
    prefix = pglog.line_prefix()
    head = "2026-01-02 03:04:05.678 UTC [42] user=shop_app,db=shop,app=,client=::1 "
    log = tmp_path / "postgresql.log"
    log.write_text(
        head
        + "LOG:  duration: 150.000 ms  statement: SELECT 1\n"
        + head
        + "LOG:  duration: 2.000 ms  statement: SELECT 2\n",
        encoding="utf-8",
    )
    html = pglog.pgbadger(log, tmp_path / "pgbadger.html", prefix=prefix)

    assert pgbadger_report.check_report(html) == 2
    page = tmp_path / "top.html"
    assert pgbadger_report.top_queries_page(html, page)
    text = page.read_text(encoding="utf-8")
    assert '<li class="slide active-slide" id="topqueries-slide">' in text
    assert '<li class="slide" id="overview-slide">' in text
