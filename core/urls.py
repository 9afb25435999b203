from django.contrib.auth import views as auth_views
from django.urls import path

from core.views import ThrottledLoginView, home

urlpatterns = [
    # Names are global (no namespace) so ``LOGIN_REDIRECT_URL = "home"`` resolves.
    path("", home, name="home"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
