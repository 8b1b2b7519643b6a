import gc

from mailer.serving import prepare_worker


def test_a_web_worker_loads_its_templates_then_freezes_what_it_loaded(app):
    app.jinja_env.cache.clear()
    try:
        prepare_worker(app)
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    names = app.jinja_env.list_templates(extensions=("html", "txt"))
    assert "base.html" in names and "admin/model/list.html" in names
    cached = {template.name for template in app.jinja_env.cache.values()}
    assert cached >= set(names)
    # The app's modules, mappers and templates: far more than a bare interpreter holds.
    assert frozen > 50_000
