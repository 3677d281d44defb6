"""``/api/keys/``: a person asks for API keys with an email address and gets a mail
with a one-time link; the link's page makes the keys on a POST (a mail scanner that
follows the link makes nothing) and shows them once."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from jobs.api.auth import retry_after
from jobs.lib.mailboxes import mailbox_key
from jobs.lib.ratelimit import allow, client_address, client_key, configured_rate
from jobs.mail.api_keys import key_link_read, key_link_request
from jobs.store.api_keys import key_request_redeem


class KeyRequestForm(forms.Form):
    email = forms.EmailField(
        label="Your email", max_length=254, error_messages={"invalid": "Enter a valid email address."}
    )


def _too_many(request: HttpRequest, scope: str) -> HttpResponse:
    response = render(request, "429.html", status=429)
    response["Retry-After"] = str(retry_after(scope))
    return response


@require_http_methods(["GET", "POST"])
def keys_request(request: HttpRequest) -> HttpResponse:
    """The form; a valid post mails the link. The answer is the same whether or not
    the address may be mailed (suppressed, capped): it tells nobody which it is."""
    form = KeyRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not allow("ip", client_key(client_address(request)), configured_rate("ip")):
            return _too_many(request, "ip")
        if form.is_valid():
            email = form.cleaned_data["email"]
            if not allow("email", mailbox_key(email), configured_rate("email")):
                return _too_many(request, "email")
            key_link_request(email=email)
            return render(request, "api/keys.html", {"sent": True})
    return render(request, "api/keys.html", {"form": form}, status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def keys_reveal(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a button. POST: the keys, made now and shown once."""
    request_id = key_link_read(token)
    if request_id is None:
        return render(request, "api/keys_reveal.html", {"used": True}, status=410)
    if request.method == "GET":
        return render(request, "api/keys_reveal.html", {"token": token})
    keys = key_request_redeem(request_id)
    if keys is None:
        return render(request, "api/keys_reveal.html", {"used": True}, status=410)
    return render(request, "api/keys_reveal.html", {"keys": keys})  # never_cache: no-store
