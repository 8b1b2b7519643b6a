"""gunicorn settings for `web` in the Procfile (gunicorn also reads this file by itself when
started in the checkout)."""

import gunicorn.http.wsgi

# gunicorn names itself in a Server header of every response and has no setting for it: the
# software and its version are nobody's business, so the header only says "Mailer".
gunicorn.http.wsgi.SERVER = "Mailer"
