from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.drf import HasScope, require_scopes


class Contacts(APIView):
    required_scopes = {"GET": ["contacts:read"], "POST": ["contacts:write"]}

    def get(self, request):
        return Response(
            {
                "key": request.auth.id,
                "user": request.user.username,
                "pk": request.user.pk,
                "owner": request.user.owner,
                "authenticated": request.user.is_authenticated,
            }
        )

    def post(self, request):
        return Response({"added_by": request.auth.id}, status=201)


class Me(APIView):
    permission_classes = [HasScope]  # no required_scopes: any valid key

    def get(self, request):
        return Response({"name": request.auth.name})


@api_view(["GET"])
@permission_classes([require_scopes("billing:read", "contacts:read")])
def export(request):
    return Response({"key": request.auth.id})


@api_view(["GET"])
@permission_classes([])
def health(request):
    return Response({"user": str(request.user), "auth": request.auth})


urlpatterns = [
    path("contacts", Contacts.as_view()),
    path("me", Me.as_view()),
    path("export", export),
    path("health", health),
]
