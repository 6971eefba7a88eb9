"""A Celery task runs under the request id of the request that enqueued it.

before_task_publish puts the current id into the message's headers; in the
worker, task_prerun sets it for the task's run and task_postrun puts back
what was there before. The worker's log lines, Celery's own "Task ...
succeeded" among them, then carry the id of the request that asked for the
work, and a task enqueued by that task carries it on.

A task run eagerly (no broker, REDIS_URL empty) runs inside the request
itself and is never published: it keeps the request's id, and postrun
restores it for the rest of the request. Tasks from beat have no request
and run with no id.

Connected when the shop app is ready (shop/apps.py), in web processes and
workers alike.
"""

from celery.signals import before_task_publish, task_postrun, task_prerun

from shop.observability.context import request_id_get, request_id_var

HEADER = "shop_request_id"

# The token of each running task's request id, to restore on postrun: by
# task id, since prerun and postrun are separate calls.
_tokens = {}


@before_task_publish.connect(dispatch_uid="shop.observability.request_id_publish")
def request_id_publish(sender=None, headers=None, **kwargs):
    request_id = request_id_get()
    if request_id is not None and headers is not None:
        headers.setdefault(HEADER, request_id)


def request_id_of_task(task) -> str | None:
    """The id the task's message carries (a custom header of protocol 2)."""
    request = task.request
    found = getattr(request, HEADER, None)
    if found is None:
        found = (getattr(request, "headers", None) or {}).get(HEADER)
    return found


@task_prerun.connect(dispatch_uid="shop.observability.request_id_prerun")
def request_id_prerun(sender=None, task_id=None, task=None, **kwargs):
    if task is None:
        return
    # Eager: no message, so no header; the request's own id stays.
    request_id = request_id_of_task(task) or request_id_get()
    _tokens[task_id] = request_id_var.set(request_id)


@task_postrun.connect(dispatch_uid="shop.observability.request_id_postrun")
def request_id_postrun(sender=None, task_id=None, **kwargs):
    token = _tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
