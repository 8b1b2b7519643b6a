"""gunicorn settings for `web` in the Procfile (gunicorn also reads this file by itself when
started in the checkout). WEB_CONCURRENCY and WEB_THREADS change the number of processes and
of threads in each."""

import os

import gunicorn.http.wsgi

# gunicorn names itself in a Server header of every response and has no setting for it: the
# software and its version are nobody's business, so the header only says "Mailer".
gunicorn.http.wsgi.SERVER = "Mailer"

# Threaded workers keep telling the master they are alive while a thread streams a long CSV
# export, so the worker timeout does not cut it.
worker_class = "gthread"
# Python runs one thread of a process at a time and the pages compute more than they wait, so
# each process serves one request at a time, and there are four per core (gunicorn's range is
# two to four) so that requests waiting on the database or streaming an export leave no core
# idle. Measured with bench/pages.py: two requests sharing a process made the slowest answers
# a third slower than one request per process.
workers = int(os.environ.get("WEB_CONCURRENCY") or 4 * (os.cpu_count() or 1))
threads = int(os.environ.get("WEB_THREADS") or 1)
# A worker takes a connection only when it has a thread free for it, and a connection is closed
# after its answer: a request waits in the shared queue for whichever worker is free first, not
# behind the request of a busy worker that happened to accept it (which doubled the slowest
# answers under load). Behind a reverse proxy, connections to gunicorn are short anyway.
worker_connections = threads
keepalive = 0


def post_worker_init(worker):
    from mailer.serving import prepare_worker

    prepare_worker(worker.wsgi)
