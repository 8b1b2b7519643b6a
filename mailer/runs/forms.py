from flask_wtf import FlaskForm


class RunActionForm(FlaskForm):
    """The buttons of the run pages (Send now, Cancel, Retry failed) carry only the CSRF token."""
