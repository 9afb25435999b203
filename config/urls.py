from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.views import api_not_found, server_error

# Swagger UI: the split view serves its start-up script as a file (script-src 'self' holds);
# its page carries an inline <style> and the UI sets inline styles, allowed on this page only
# (replaced, not extended: next to the policy's hash, 'unsafe-inline' would be ignored).
api_docs = csp_replace({"style-src": [SELF, UNSAFE_INLINE]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("annotation.api.urls")),
    path("api/v1/", include("provenance.api.urls")),
    path("api/v1/", include("ml.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("", include("core.urls")),
    path("", include("provenance.urls")),
    path("", include("annotation.urls")),
    path("", include("ml.urls")),
]

handler404 = api_not_found
handler500 = server_error
