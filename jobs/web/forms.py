"""The public job form: every field is untrusted and validated here (and in the browser)."""

from __future__ import annotations

import datetime as dt
import unicodedata
import zoneinfo

from django import forms
from django.conf import settings
from django.utils import timezone

from downloader.choices import (
    AUTO,
    ENGINE_CHOICES,
    FILTER_KINDS,
    FILTER_LABELS,
    FILTER_VALUES,
    FORMAT_CHOICES,
    MAX_COUNT,
    MIN_COUNT,
    PACK_CHOICES,
    PACK_DEFAULT,
    SAFE_SEARCH_CHOICES,
    SAFE_SEARCH_DEFAULT,
    Filters,
)
from jobs.lib.mailboxes import address_problem
from jobs.lib.timezones import is_valid_zone, zone_options_html


class ZoneSelect(forms.Select):
    """The zone picker, rendered as one string: Django's per-option templates made the
    home page several times slower than any other page."""

    def render(self, name, value, attrs=None, renderer=None):
        from django.utils.html import escape
        from django.utils.safestring import mark_safe

        final = self.build_attrs(self.attrs, attrs)
        attributes = "".join(
            f' {escape(k)}="{escape(v)}"' for k, v in final.items() if v not in (None, False)
        )
        return mark_safe(  # noqa: S308 (every piece is escaped above)
            f'<select name="{escape(name)}"{attributes}>{zone_options_html(str(value or ""))}</select>'
        )


REPEAT_NEVER = "never"
REPEAT_CHOICES = [(REPEAT_NEVER, "Never"), ("day", "Every day"), ("week", "Every week")]

PAST_GRACE = dt.timedelta(minutes=2)  # a time this recent means "now"

URL_PROBLEMS = {
    "bad_scheme": "Enter a web address starting with http:// or https://.",
    "bad_url": "Enter a web address starting with http:// or https://.",
    "dns_error": "We could not find that web site. Check the address.",
    "private_address": "That address points to a private or local network, which we do not fetch from.",
}


def check_public_url(value: str) -> str | None:
    """An error message for a page address the worker must not open, else None.

    The download chokepoint's own resolve-and-check decides (the same rules, allowed
    networks included, that the worker applies before it opens the page).
    """
    from downloader.config import fetch_policy_from_settings
    from downloader.http import Refused, resolve_checked

    try:
        resolve_checked(value, fetch_policy_from_settings())
    except Refused as exc:
        return URL_PROBLEMS.get(exc.reason, URL_PROBLEMS["bad_url"])
    return None


def _filter_field(kind: str, help_text: str = "") -> forms.ChoiceField:
    """A select for one engine filter: "Any", then its values (not required: a post
    without it, from an older page or a script, means any)."""
    return forms.ChoiceField(
        label=FILTER_LABELS[kind],
        choices=[("", "Any"), *FILTER_VALUES[kind].items()],
        required=False,
        help_text=help_text,
    )


class JobForm(forms.Form):
    query = forms.CharField(
        label="Search for",
        max_length=200,
        required=False,
        strip=True,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. red fox in snow", "maxlength": 200, "autocomplete": "off"}
        ),
    )
    page_url = forms.CharField(
        label="…or extract the images of this page",
        max_length=2000,
        required=False,
        strip=True,
        widget=forms.URLInput(attrs={"placeholder": "https://example.org/gallery"}),
    )
    count = forms.IntegerField(
        label="How many images",
        min_value=MIN_COUNT,
        max_value=MAX_COUNT,
        initial=100,
        error_messages={
            "invalid": f"Enter a whole number from {MIN_COUNT} to {MAX_COUNT}.",
            "min_value": f"Ask for at least {MIN_COUNT} image.",
            "max_value": f"Ask for at most {MAX_COUNT} images.",
        },
    )
    email = forms.EmailField(
        label="Your email", max_length=254, error_messages={"invalid": "Enter a valid email address."}
    )
    run_date = forms.DateField(
        label="Date",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date."},
    )
    run_time = forms.TimeField(
        label="Time",
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages={"invalid": "Enter a time like 14:30."},
    )
    # A text field checked against the zone database: the widget renders the list
    # itself, and a ChoiceField would deep-copy ~400 choices for every form built.
    time_zone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        widget=ZoneSelect,
        error_messages={"required": "Choose a time zone from the list."},
    )
    formats = forms.MultipleChoiceField(
        label="Formats", choices=FORMAT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    min_width = forms.IntegerField(
        label="Minimum width (px)", min_value=0, max_value=10000, initial=0, required=False
    )
    min_height = forms.IntegerField(
        label="Minimum height (px)", min_value=0, max_value=10000, initial=0, required=False
    )
    engine = forms.ChoiceField(label="Search engine", choices=ENGINE_CHOICES, initial=AUTO)
    # Not required: a post without it (an older page, a script) gets the default.
    safe_search = forms.ChoiceField(
        label="Safe search",
        choices=SAFE_SEARCH_CHOICES,
        initial=SAFE_SEARCH_DEFAULT,
        required=False,
        widget=forms.RadioSelect,
        help_text="Strict hides suggestive images too; Off shows whatever the engines find.",
    )

    # Not required: a post without it (an older page, a script) gets a zip of images.
    pack = forms.ChoiceField(
        label="Pack as",
        choices=PACK_CHOICES,
        initial=PACK_DEFAULT,
        required=False,
        help_text="One zip whatever you choose; the dataset layouts add captions for training.",
    )

    # Not required: a post without it (an older page, a script) runs once.
    repeat = forms.ChoiceField(
        label="Repeat",
        choices=REPEAT_CHOICES,
        initial=REPEAT_NEVER,
        required=False,
        widget=forms.RadioSelect,
        help_text="Run again every day or week at this time in your time zone; each delivery "
        "leaves out the images sent before. Every email has a link to stop it.",
    )

    # The engine filters, one select per kind ("" is any): filter_license, filter_colour, ...
    filter_license = _filter_field("license", "Where the engine knows the license.")
    filter_colour = _filter_field("colour")
    filter_layout = _filter_field("layout", "Checked on the pixels too.")
    filter_size = _filter_field("size")
    filter_type = _filter_field("type", "Animated is checked on the frames too.")
    filter_freshness = _filter_field("freshness", "How recently the engine found it.")

    def clean_query(self) -> str:
        value = self.cleaned_data["query"]
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
            raise forms.ValidationError("The search text contains characters we cannot use.")
        return " ".join(value.split())

    def clean_email(self) -> str:
        # A suppressed address is accepted like any other (the outbox sends it nothing):
        # refusing it would tell anyone who unsubscribed.
        value = self.cleaned_data["email"]
        problem = address_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean_page_url(self) -> str:
        value = self.cleaned_data["page_url"]
        if value:
            problem = check_public_url(value)
            if problem:
                raise forms.ValidationError(problem)
        return value

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"]
        if not is_valid_zone(value):
            raise forms.ValidationError("Choose a time zone from the list.")
        return value

    def clean(self) -> dict:
        data = super().clean()
        query, page_url = data.get("query"), data.get("page_url")
        if "query" in data and "page_url" in data:
            if not query and not page_url:
                self.add_error("query", "Enter what to search for, or a page address.")
            elif query and page_url:
                self.add_error("page_url", "Give either a search or a page address, not both.")
        day, time_of_day, zone_name = data.get("run_date"), data.get("run_time"), data.get("time_zone")
        if day and time_of_day and zone_name:
            run_at = self._run_at(day, time_of_day, zone_name)
            if run_at is not None:
                data["run_at"] = run_at
        data["min_width"] = data.get("min_width") or 0
        data["min_height"] = data.get("min_height") or 0
        data["safe_search"] = data.get("safe_search") or SAFE_SEARCH_DEFAULT
        data["repeat"] = data.get("repeat") or REPEAT_NEVER
        data["pack"] = data.get("pack") or PACK_DEFAULT
        data["filters"] = Filters(**{kind: data.get(f"filter_{kind}") or "" for kind in FILTER_KINDS})
        return data

    def request_fields(self) -> dict[str, object]:
        """The valid form as ``job_submit`` (and ``series_submit``) take it."""
        data = self.cleaned_data
        return {
            "email": data["email"],
            "query": data["query"],
            "page_url": data["page_url"],
            "requested_count": data["count"],
            "run_at": data["run_at"],
            "time_zone": data["time_zone"],
            "formats": set(data["formats"]),
            "min_width": data["min_width"],
            "min_height": data["min_height"],
            "engine": data["engine"],
            "safe_search": data["safe_search"],
            "filters": data["filters"],
            "pack": data["pack"],
        }

    def _run_at(self, day: dt.date, time_of_day: dt.time, zone_name: str) -> dt.datetime | None:
        zone = zoneinfo.ZoneInfo(zone_name)
        naive = dt.datetime.combine(day, time_of_day.replace(second=0, microsecond=0))
        local = naive.replace(tzinfo=zone, fold=0)  # an ambiguous time means its first occurrence
        if local.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
            self.add_error(
                "run_time",
                f"{naive:%H:%M} does not exist on {naive:%d %B %Y} in {zone_name} "
                "(the clocks skip it). Choose another time.",
            )
            return None
        now = timezone.now()
        if local < now - PAST_GRACE:
            self.add_error("run_date", "That time has passed. Choose a time from now on.")
            return None
        if local > now + dt.timedelta(days=settings.IMAGEDL_MAX_SCHEDULE_DAYS):
            self.add_error(
                "run_date", f"Choose a time within the next {settings.IMAGEDL_MAX_SCHEDULE_DAYS} days."
            )
            return None
        return max(local, now)
