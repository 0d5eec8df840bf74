"""Fixtures from fastsecure_sqlalchemy.testing: a store on each backend, dropped after."""

from fastsecure_sqlalchemy.testing import BACKENDS as BACKENDS
from fastsecure_sqlalchemy.testing import MARIADB_URL as MARIADB_URL
from fastsecure_sqlalchemy.testing import PG_URL as PG_URL
from fastsecure_sqlalchemy.testing import backend as backend
from fastsecure_sqlalchemy.testing import dump as dump
from fastsecure_sqlalchemy.testing import make_store as make_store
from fastsecure_sqlalchemy.testing import service as service
from fastsecure_sqlalchemy.testing import statement_log as statement_log
from fastsecure_sqlalchemy.testing import store as store
