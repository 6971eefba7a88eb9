"""Test database set-up for every test under the project, wherever it lives.

At the root, not in tests/, so that no test file anywhere in the project can
fall back to pytest-django's default set-up: that one creates databases only
for the aliases a test asks for, and `default` / `replica` / `readonly` / `loader`
(mirrors of `owner`) would then point at the development database itself.
"""

import pytest
from django.db import connections


@pytest.fixture(scope="session")
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_keepdb
):
    """Create the test database for every alias, not only the ones asked for."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            keepdb=django_db_keepdb,
            aliases={"owner", "default", "replica", "readonly", "loader"},
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            connections.close_all()
            teardown_databases(config, verbosity=request.config.option.verbose)
