"""The admin page of API keys: newest first (one small listing partition), a form that
issues keys for a mailbox and shows them once, and **Revoke**, written to the admin log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from jobs.models import ApiKey
from jobs.store.api_keys import PREFIX_LENGTH, api_key_create, api_key_revoke, api_keys_list


class IssueForm(forms.Form):
    email = forms.EmailField(label="Mailbox", max_length=254)


def _log(request: HttpRequest, prefix: str, flag: int, message: str) -> None:
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=ContentType.objects.get_for_model(ApiKey, for_concrete_model=False).pk,
        object_id=prefix,
        object_repr=f"ApiKey {prefix}",
        action_flag=flag,
        change_message=message,
    )


class ApiKeyAdmin(admin.ModelAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.list_view), name="jobs_apikey_changelist"),
            path("add/", wrap(self.issue_view), name="jobs_apikey_add"),
            path("<str:object_id>/change/", wrap(self.revoke_view), name="jobs_apikey_change"),
        ]

    def _context(self, request: HttpRequest, title: str, **extra: object) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": ApiKey._meta, **extra}

    def list_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = [
            {"key": k, "url": reverse("admin:jobs_apikey_change", args=[k.prefix])} for k in api_keys_list()
        ]
        context = self._context(
            request, "API keys", rows=rows, can_add=self.has_add_permission(request), form=IssueForm()
        )
        return render(request, "admin/jobs/apikey_list.html", context)

    def issue_view(self, request: HttpRequest) -> HttpResponse:
        """Issue keys for a mailbox; the three values are shown on this answer only."""
        if not self.has_add_permission(request) or request.method != "POST":
            raise PermissionDenied
        form = IssueForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Enter a valid email address.")
            return HttpResponseRedirect(reverse("admin:jobs_apikey_changelist"))
        keys = api_key_create(email=form.cleaned_data["email"])
        _log(request, keys.read_write[:PREFIX_LENGTH], ADDITION, "Issued a read-write and a read-only key")
        response = render(
            request, "admin/jobs/apikey_issued.html", self._context(request, "Keys issued", keys=keys)
        )
        response["Cache-Control"] = "no-store"
        return response

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_change_permission(request) or request.method != "POST":
            raise PermissionDenied
        if api_key_revoke(object_id):
            _log(request, object_id, CHANGE, "Revoked (with the key issued with it)")
            messages.success(request, f"Revoked {object_id} and the key issued with it.")
        else:
            messages.error(request, "No key with that prefix.")
        return HttpResponseRedirect(reverse("admin:jobs_apikey_changelist"))


admin.site.register(ApiKey, ApiKeyAdmin)
