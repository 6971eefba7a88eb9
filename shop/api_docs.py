"""The OpenAPI schema and its two docs pages, as shop/urls.py serves them.

drf-spectacular's views, changed where the shop's hostile-input test
(tests/shop/test_hostile_inputs.py) found them answering outside the API's
contract:

- Errors are the API's JSON `{code, detail}`, as on every other path under
  /api/. The docs pages render with TemplateHTMLRenderer alone, so their
  errors (an unknown `?format=`, a token that is not valid) came back as a
  bare "404 Not Found" in text/html; the schema's came back in YAML, or not
  at all where a detail was a list. The pages and the schema themselves
  keep their formats.
- The schema takes `?lang=` only for a language in settings.LANGUAGES.
  Django keeps a translation object for every language code it is asked to
  activate, for the life of the process, so each new value cost memory for
  good.
- The schema refuses `?version=`. The API has one version, in its path
  (/api/v1/); drf-spectacular copied the value into the schema's
  info.version and into the Content-Disposition header, where a newline
  in it was a 500.
"""

from django.conf import settings
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer


class SchemaQueryInput(serializers.Serializer):
    # LANGUAGE_CODE ("en-us") is not among Django's LANGUAGES ("en"), but it
    # is the language the schema is written in.
    lang = serializers.ChoiceField(
        choices=sorted({*dict(settings.LANGUAGES), settings.LANGUAGE_CODE}),
        required=False,
        allow_blank=True,  # as absent, to drf-spectacular
    )
    version = serializers.CharField(required=False, allow_blank=True)

    def validate_version(self, value):
        if value:
            raise serializers.ValidationError(
                "The API has one version, in its path (/api/v1/): leave out ?version=."
            )
        return value


class JsonErrorsMixin:
    """A view whose own renderers are not the API's, but whose errors are."""

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(response, "exception", False):
            # A template renderer prints the status line alone, and the
            # schema's YAML renderer cannot write DRF's error details.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaApi(JsonErrorsMixin, SpectacularAPIView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        SchemaQueryInput(data=request.query_params).is_valid(raise_exception=True)


class SwaggerPage(JsonErrorsMixin, SpectacularSwaggerView):
    pass


class RedocPage(JsonErrorsMixin, SpectacularRedocView):
    pass
