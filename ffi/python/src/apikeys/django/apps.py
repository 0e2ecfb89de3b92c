"""The Django application "apikeys.django" (label "apikeys")."""

from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "apikeys.django"
    label = "apikeys"
    verbose_name = "API keys"
