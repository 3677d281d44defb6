"""The public job form: every field is untrusted and validated here (and in the browser)."""

from __future__ import annotations

import copy
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


class FixedChoices:
    """For a choice field whose choices are fixed at import: each form's copy of the
    field and of its widget shares them. Django copies and normalizes every field's
    choices, twice, for every form built: a third of a submission's CPU. Nothing
    changes them in place (a new list may still be assigned to one form's field).
    The rest is copied as ``forms.Field.__deepcopy__`` copies it."""

    def __deepcopy__(self, memo: dict) -> forms.Field:
        result = copy.copy(self)  # the choices: the same list
        memo[id(self)] = result
        result.widget = copy.copy(self.widget)  # its choices: the same list
        result.widget.attrs = self.widget.attrs.copy()
        memo[id(self.widget)] = result.widget
        result.error_messages = self.error_messages.copy()
        result.validators = self.validators[:]
        return result


class FixedChoiceField(FixedChoices, forms.ChoiceField):
    pass


class FixedMultipleChoiceField(FixedChoices, forms.MultipleChoiceField):
    pass


REPEAT_NEVER = "never"
REPEAT_CHOICES = [(REPEAT_NEVER, "Never"), ("day", "Every day"), ("week", "Every week")]
START_NOW, START_LATER = "now", "later"
START_CHOICES = [(START_NOW, "As soon as possible"), (START_LATER, "At a set time")]
SOURCE_QUERY, SOURCE_PAGE = "query", "page"
SOURCE_CHOICES = [(SOURCE_QUERY, "Search words"), (SOURCE_PAGE, "A page address")]

PAST_GRACE = dt.timedelta(minutes=15)  # a set time this recent means "now"

# Every message the form shows, in one place: the server raises them and the page hands
# them to form.js (``browser_messages``), so the browser says the same words.
MESSAGES = {
    "query_required": "Enter the words to search for",
    "query_long": "Search words must be 200 characters or fewer",
    "query_chars": "Remove the hidden control characters from the search words",
    "page_required": "Enter the address of the page",
    "page_long": "The page address must be 2000 characters or fewer",
    "page_bad": "Enter a page address that starts with http:// or https://",
    "page_dns": "We could not find that web site: check the page address",
    "page_private": "Enter the address of a public page (this one is on a private or local network)",
    "both": "Give search words or a page address, not both",
    "count_required": "Enter how many images you want",
    "count_invalid": "Enter the number of images as a whole number, like 30",
    "count_range": "Ask for 1 to 500 images",
    "email_required": "Enter your email address",
    "email_invalid": "Enter an email address like name@example.org",
    "email_long": "Enter an email address of 254 characters or fewer",
    "date_required": "Enter the date to start",
    "date_invalid": "Enter a real date, like 25 12 2026",
    "date_far": "Choose a date within the next {max_days} days",
    "time_required": "Enter the time to start",
    "time_invalid": "Enter a time like 14:30",
    "time_past": "That time has passed: choose a later time, or As soon as possible",
    "zone": "Choose a time zone from the list",
    "size_range": "Enter a number of pixels from 0 to 10000 (0 means any size)",
    "until_invalid": "Enter a real date for the last delivery, or leave it empty",
    "until_early": "The last delivery must be on or after the first one",
    "choice": "Choose one of the options",
}


def message(key: str) -> str:
    """One of the form's messages, with the configured limits filled in."""
    return MESSAGES[key].format(max_days=settings.IMAGEDL_MAX_SCHEDULE_DAYS)


def browser_messages() -> dict[str, str]:
    """The messages form.js shows (it checks the same things before posting)."""
    return {key: message(key) for key in MESSAGES}


URL_PROBLEMS = {
    "bad_scheme": "page_bad",
    "bad_url": "page_bad",
    "dns_error": "page_dns",
    "private_address": "page_private",
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
        return message(URL_PROBLEMS.get(exc.reason, "page_bad"))
    return None


FILTER_HINTS = {
    "license": "Only where the search engine knows the license.",
    "layout": "We also measure each image.",
    "type": "We also check that animated images move.",
    "freshness": "When the search engine first saw the image.",
}


def _filter_field(kind: str) -> FixedChoiceField:
    """A select for one engine filter: "Any", then its values (not required: a post
    without it, from an older page or a script, means any)."""
    return FixedChoiceField(
        label=FILTER_LABELS[kind],
        choices=[("", "Any"), *FILTER_VALUES[kind].items()],
        required=False,
        help_text=FILTER_HINTS.get(kind, ""),
        error_messages={"invalid_choice": MESSAGES["choice"]},
    )


def _size_field(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=10000,
        initial=0,
        required=False,
        help_text="0 means any size.",
        error_messages={key: MESSAGES["size_range"] for key in ("invalid", "min_value", "max_value")},
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _messages(**keys: str) -> dict[str, str]:
    """Django's error codes mapped to messages of MESSAGES."""
    return {code: MESSAGES[key] for code, key in keys.items()}


class JobForm(forms.Form):
    # Not required: a post without it (the API, an older page) means whichever of
    # query and page_url is filled in.
    source = FixedChoiceField(
        label="Search words or a page address?",
        choices=SOURCE_CHOICES,
        required=False,
        widget=forms.RadioSelect,
    )
    query = forms.CharField(
        label="Search words",
        max_length=200,
        required=False,
        strip=True,
        help_text="For example, red fox in snow.",
        error_messages=_messages(max_length="query_long", null_characters_not_allowed="query_chars"),
        widget=forms.TextInput(attrs={"maxlength": 200, "autocomplete": "off", "spellcheck": "true"}),
    )
    page_url = forms.CharField(
        label="Page address",
        max_length=2000,
        required=False,
        strip=True,
        help_text="We collect the images shown on this page. For example, https://example.org/gallery.",
        error_messages=_messages(max_length="page_long", null_characters_not_allowed="page_bad"),
        widget=forms.URLInput(attrs={"autocomplete": "url"}),
    )
    count = forms.IntegerField(
        label="How many images?",
        min_value=MIN_COUNT,
        max_value=MAX_COUNT,
        initial=100,
        help_text=f"{MIN_COUNT} to {MAX_COUNT}.",
        error_messages=_messages(
            required="count_required",
            invalid="count_invalid",
            min_value="count_range",
            max_value="count_range",
        ),
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "input-short"}),
    )
    # Not required: a post without it (the API, an older page) means "at the set
    # time" when a date is given.
    start = FixedChoiceField(
        label="When should we start?",
        choices=START_CHOICES,
        initial=START_NOW,
        required=False,
        widget=forms.RadioSelect,
    )
    run_date = forms.DateField(
        label="Date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages=_messages(invalid="date_invalid"),
    )
    run_time = forms.TimeField(
        label="Time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages=_messages(invalid="time_invalid"),
    )
    # A text field checked against the zone database: the widget renders the list
    # itself, and a ChoiceField would deep-copy ~400 choices for every form built.
    time_zone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        widget=ZoneSelect,
        error_messages=_messages(required="zone", max_length="zone"),
    )
    email = forms.EmailField(
        label="Your email address",
        max_length=254,
        help_text="We send the link to your images here.",
        error_messages=_messages(required="email_required", invalid="email_invalid", max_length="email_long"),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
    )
    formats = FixedMultipleChoiceField(
        label="Formats",
        choices=FORMAT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick none for all formats.",
        error_messages=_messages(invalid_choice="choice"),
    )
    min_width = _size_field("Smallest width in pixels")
    min_height = _size_field("Smallest height in pixels")
    engine = FixedChoiceField(
        label="Search engine",
        choices=ENGINE_CHOICES,
        initial=AUTO,
        help_text="Automatic tries the next engine when one does not answer.",
        error_messages=_messages(required="choice", invalid_choice="choice"),
    )
    # Not required: a post without it (an older page, a script) gets the default.
    safe_search = FixedChoiceField(
        label="Safe search",
        choices=SAFE_SEARCH_CHOICES,
        initial=SAFE_SEARCH_DEFAULT,
        required=False,
        widget=forms.RadioSelect,
        help_text="Strict also hides suggestive images; Off shows whatever the search engines find.",
        error_messages=_messages(invalid_choice="choice"),
    )

    # Not required: a post without it (an older page, a script) gets a zip of images.
    pack = FixedChoiceField(
        label="Pack as",
        choices=PACK_CHOICES,
        initial=PACK_DEFAULT,
        required=False,
        help_text="One zip whatever you choose; the dataset layouts add captions for training.",
        error_messages=_messages(invalid_choice="choice"),
    )

    # Not required: a post without it (an older page, a script) runs once.
    repeat = FixedChoiceField(
        label="Repeat?",
        choices=REPEAT_CHOICES,
        initial=REPEAT_NEVER,
        required=False,
        widget=forms.RadioSelect,
        help_text=f"Each delivery leaves out the images sent before. At most "
        f"{settings.IMAGEDL_SERIES_MAX_RUNS} times; every email has a link to stop it.",
        error_messages=_messages(invalid_choice="choice"),
    )
    repeat_until = forms.DateField(
        label="Last delivery (optional)",
        required=False,
        help_text="Leave empty to go on until you stop it.",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages=_messages(invalid="until_invalid"),
    )

    # The engine filters, one select per kind ("" is any): filter_license, filter_colour, ...
    filter_license = _filter_field("license")
    filter_colour = _filter_field("colour")
    filter_layout = _filter_field("layout")
    filter_size = _filter_field("size")
    filter_type = _filter_field("type")
    filter_freshness = _filter_field("freshness")

    FILTER_FIELDS = ("formats", "min_width", "min_height", "engine", *(f"filter_{k}" for k in FILTER_KINDS))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and "source" not in self.initial:
            self.initial["source"] = SOURCE_PAGE if self.initial.get("page_url") else SOURCE_QUERY

    def clean_query(self) -> str:
        value = self.cleaned_data["query"]
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
            raise forms.ValidationError(MESSAGES["query_chars"])
        return " ".join(value.split())

    def clean_email(self) -> str:
        # A suppressed address is accepted like any other (the outbox sends it nothing):
        # refusing it would tell anyone who unsubscribed.
        value = self.cleaned_data["email"]
        problem = address_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"]
        if not is_valid_zone(value):
            raise forms.ValidationError(MESSAGES["zone"])
        return value

    def clean(self) -> dict:
        data = super().clean()
        self._clean_source(data)
        self._clean_start(data)
        data["min_width"] = data.get("min_width") or 0
        data["min_height"] = data.get("min_height") or 0
        data["safe_search"] = data.get("safe_search") or SAFE_SEARCH_DEFAULT
        data["repeat"] = data.get("repeat") or REPEAT_NEVER
        data["pack"] = data.get("pack") or PACK_DEFAULT
        data["filters"] = Filters(**{kind: data.get(f"filter_{kind}") or "" for kind in FILTER_KINDS})
        until = data.get("repeat_until")
        if data["repeat"] == REPEAT_NEVER:
            data["repeat_until"] = None
        elif until and "run_at" in data and until < self._local_day(data["run_at"], data["time_zone"]):
            self.add_error("repeat_until", MESSAGES["until_early"])
        return data

    def _clean_source(self, data: dict) -> None:
        """Search words or a page address: the one the question chose (the other,
        hidden, is ignored), else whichever is filled in."""
        if "query" not in data or "page_url" not in data:
            return
        source = data.get("source") or ""
        if source == SOURCE_QUERY:
            data["page_url"] = ""
        elif source == SOURCE_PAGE:
            data["query"] = ""
        query, page_url = data["query"], data["page_url"]
        if query and page_url:
            self.add_error("page_url", MESSAGES["both"])
        elif not query and not page_url:
            self.add_error(
                "page_url" if source == SOURCE_PAGE else "query", message(f"{source or 'query'}_required")
            )
        elif page_url:
            problem = check_public_url(page_url)
            if problem:
                self.add_error("page_url", problem)

    def is_start_now(self) -> bool:
        """Whether the post asks to start as soon as possible (without the question,
        from the API or an older page: when it gives no date)."""
        chosen = self.data.get("start") if self.is_bound else self.initial.get("start", START_NOW)
        if chosen in (START_NOW, START_LATER):
            return chosen == START_NOW
        return not (self.data.get("run_date") if self.is_bound else False)

    def _clean_start(self, data: dict) -> None:
        if self.is_start_now():
            for name in ("run_date", "run_time"):  # hidden: whatever they hold does not count
                self.errors.pop(name, None)
            data["run_at"] = timezone.now()
            return
        day, time_of_day, zone_name = data.get("run_date"), data.get("run_time"), data.get("time_zone")
        if day is None and "run_date" not in self.errors:
            self.add_error("run_date", MESSAGES["date_required"])
        if time_of_day is None and "run_time" not in self.errors:
            self.add_error("run_time", MESSAGES["time_required"])
        if day and time_of_day and zone_name:
            run_at = self._run_at(day, time_of_day, zone_name)
            if run_at is not None:
                data["run_at"] = run_at

    @staticmethod
    def _local_day(moment: dt.datetime, zone_name: str | None) -> dt.date:
        return moment.astimezone(zoneinfo.ZoneInfo(zone_name or "UTC")).date()

    def filters_set(self) -> int:
        """How many of the optional filters are set (the Filters summary says so)."""
        values = self.data if self.is_bound else self.initial
        count = 0
        for name in self.FILTER_FIELDS:
            if name == "formats":
                chosen = values.getlist(name) if hasattr(values, "getlist") else values.get(name)
                count += bool(chosen)
            elif name == "engine":
                count += (values.get(name) or AUTO) != AUTO
            elif name.startswith("min_"):
                count += str(values.get(name) or "0").strip() not in ("", "0")
            else:
                count += bool(values.get(name))
        return count

    def error_summary(self) -> list[tuple[str, str]]:
        """The summary's links, in the page's order: (the id of the control to go
        to, its field's one message)."""
        rows = []
        for name, field in self.fields.items():
            if name in self.errors:
                bound = self[name]
                anchor = (
                    f"{bound.auto_id}_0"
                    if isinstance(field.widget, forms.RadioSelect | forms.CheckboxSelectMultiple)
                    else bound.auto_id
                )
                rows.append((anchor, str(self.errors[name][0])))
        rows += [("job-form", str(e)) for e in self.non_field_errors()]
        return rows

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
                "(the clocks skip it): choose another time",
            )
            return None
        now = timezone.now()
        if local < now - PAST_GRACE:
            self.add_error("run_time", MESSAGES["time_past"])
            return None
        if local > now + dt.timedelta(days=settings.IMAGEDL_MAX_SCHEDULE_DAYS):
            self.add_error("run_date", message("date_far"))
            return None
        return max(local, now)
