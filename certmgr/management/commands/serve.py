"""`manage.py serve`: the web server `make run` starts (README, "Running it").

Django's development server (WhiteNoise's `runserver`, which leaves static files to the
WhiteNoise middleware, as in production) with one change: its listen backlog. Django's server
asks the kernel for a queue of 10 connections not yet accepted; when more arrive at once (a
manager saving twenty channels from a script, a CA validating while pages load), Linux drops
the SYNs beyond it and each client's TCP sends its SYN again only after a second
(RFC 6298 section 2: the initial retransmission timeout is one second). The backlog here is
the system's maximum (socket.SOMAXCONN), as gunicorn's 2048 is in the production image.
"""

import socket

from django.core.servers.basehttp import WSGIServer
from whitenoise.runserver_nostatic.management.commands.runserver import (
    Command as RunserverCommand,
)


class BackloggedWSGIServer(WSGIServer):
    request_queue_size = socket.SOMAXCONN


class Command(RunserverCommand):
    help = "Start the web server (Django's, with a listen backlog of socket.SOMAXCONN)."
    server_cls = BackloggedWSGIServer
