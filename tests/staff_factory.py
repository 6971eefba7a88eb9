"""A factory base for customer-owned tables, which row-level security guards."""

import factory

from tests.dbs import as_staff


class StaffModelFactory(factory.django.DjangoModelFactory):
    """Creates its rows as staff, the only context that may write any customer's.

    The app's role (shop_app) is subject to the policies like the app itself:
    an INSERT that acts for nobody fails their WITH CHECK.
    """

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with as_staff():
            return super()._create(model_class, *args, **kwargs)
