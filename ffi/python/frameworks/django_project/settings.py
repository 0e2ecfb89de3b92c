"""A minimal Django project for the DRF and manage.py tests. Each test points
APIKEYS at its own store with override_settings."""

SECRET_KEY = "tests only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "apikeys.django",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
APIKEYS = {"PATH": "/nonexistent/set-by-each-test.redb"}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.drf.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apikeys.drf.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
