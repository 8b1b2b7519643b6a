"""Extensions, created unbound here and bound to the app in `create_app`."""

from flask import Flask, current_app
from flask_bootstrap import Bootstrap5
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_principal import Principal
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from rq import Queue
from sqlalchemy import DDL, MetaData, event

# Named constraints keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class RQ:
    """The app's Redis connection and RQ queue, configured from REDIS_URL and RQ_QUEUE."""

    def init_app(self, app: Flask) -> None:
        app.extensions["rq"] = self

    @property
    def connection(self) -> Redis:
        state = current_app.extensions
        if "rq_redis" not in state:
            state["rq_redis"] = Redis.from_url(
                current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10
            )
        return state["rq_redis"]

    @property
    def queue(self) -> Queue:
        return Queue(current_app.config["RQ_QUEUE"], connection=self.connection)


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
# The substring searches' indexes need pg_trgm and btree_gin; the migrations create them too.
for extension in ("pg_trgm", "btree_gin"):
    event.listen(
        db.metadata,
        "before_create",
        DDL(f"CREATE EXTENSION IF NOT EXISTS {extension}").execute_if(dialect="postgresql"),
    )
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
principal = Principal(use_sessions=False)
cache = Cache()
mail = Mail()
limiter = Limiter(key_func=get_remote_address)
bootstrap = Bootstrap5()
rq = RQ()
