"""What an operator sees of the running shop (chapter 24).

- context.py: the request id of whatever runs now (a request, or a task
  enqueued by one), in a context variable, and the user it runs for.
- middleware.py: X-Request-ID in and out, the SQL each request runs, and
  one access line per request.
- logs.py: the logging filter and formatters that put the request id on
  every line, as JSON for machines or as text for a person.
- task_context.py: Celery's signals that carry the id from the request
  that enqueued a task to the worker that runs it.
- selectors.py, api.py: the top statements of pg_stat_statements, read as
  the monitoring role, for `manage.py top_queries` and staff.
"""
