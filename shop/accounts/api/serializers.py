from rest_framework import serializers


class RegisterInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, write_only=True, trim_whitespace=False
    )


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class TokenInput(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
