import factory

from shop.accounts.models import Address, Customer, User
from tests.staff_factory import StaffModelFactory


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = "Sh0p-test-pass"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # create_user hashes the password; a plain create() would store it raw.
        return model_class.objects.create_user(*args, **kwargs)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)


class AddressFactory(StaffModelFactory):
    class Meta:
        model = Address

    customer = factory.SubFactory(CustomerFactory)
    line1 = factory.Sequence(lambda n: f"{n} Test Street")
    city = "Testville"
    postal_code = "12345"
    country = "US"
