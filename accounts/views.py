from typing import cast

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import AccountDeleteForm
from accounts.models import User
from accounts.services import user_delete


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    form = AccountDeleteForm(request.POST or None, user=request.user, request=request)
    if request.method == "POST" and form.is_valid():
        user = cast(User, request.user)  # login_required: never anonymous here
        logout(request)
        user_delete(user=user)
        messages.success(request, "Your account has been deleted.")
        return redirect("landing")
    return render(request, "accounts/delete.html", {"form": form})


def awaiting_approval(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/awaiting_approval.html")
