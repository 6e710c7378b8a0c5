"""A NUL character anywhere a query could read it is answered 400, never 500, on every URL
(certmgr/request_checks.py).

PostgreSQL refuses NUL in text, and Django turned that into a 500 wherever a query parameter,
a path argument, the session cookie or a header reached a query without a form. The list
pages' filters are checked one by one (the list of the parameters each page reads is itself
checked against the code), then every URL pattern of the project is walked (tests/urlwalk.py)
with a NUL in its query, in each argument that can hold one, and in a POSTed field, as an
anonymous visitor, a manager and a superuser. Run on SQLite and on PostgreSQL
(scripts/with-postgres), where the 500s were.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import DataError, connection
from django.test import Client
from django.urls import reverse

from certificates.models import Certificate
from certmgr import demo_pki
from certmgr.request_checks import BAD_REQUEST
from saleschannels.models import SalesChannel
from tests.support import PASSWORD, upload
from tests.urlwalk import Route, routes_all

pytestmark = pytest.mark.django_db

CHECK = "certmgr.request_checks.NulCharacterMiddleware"
NUL = "\x00"
PROJECT = Path(__file__).resolve().parents[2]
SHOP_HOST = "shop.acme.test"
NOT_CODE = {"tests", "bench", "var", "node_modules", "__pycache__"}

# Every query parameter a view reads, by the page that reads it; checked against the code by
# test_the_list_of_query_parameters_is_complete.
QUERY_PARAMETERS = {
    "certificate_list": (
        "status",
        "kind",
        "institution",
        "q",
        "sort",
        "expires_after",
        "expires_before",
        "page",
    ),
    "channel_list": ("q", "page"),
    "certificate_request_new": ("kind",),
    "history": ("type", "object", "q", "actor", "action", "institution", "since", "until", "page"),
}
# The files that read them, and the parameters each reads.
QUERY_READERS = {
    "certificates/views.py": {*QUERY_PARAMETERS["certificate_list"], "kind"},
    "saleschannels/views.py": set(QUERY_PARAMETERS["channel_list"]),
    "monitoring/views.py": set(QUERY_PARAMETERS["history"]),
}
# The admin's list pages read their own: search, ordering, page, and every list filter.
ADMIN_QUERY_PARAMETERS = ("q", "o", "p", "all", "institution__id__exact", "_to_field")
ADMIN_CHANGELISTS = (
    "admin:certificates_certificate_changelist",
    "admin:saleschannels_saleschannel_changelist",
    "admin:core_auditevent_changelist",
    "admin:auth_user_changelist",
    "admin:axes_accessattempt_changelist",
)


@pytest.fixture
def shop(acme, make_certificate):
    certificate = make_certificate(acme, name="Main shop", hostnames=[SHOP_HOST])
    return SalesChannel.objects.create(
        institution=acme,
        name="Main",
        hostname=SHOP_HOST,
        ssl_mode="uploaded",
        certificate=certificate,
        active_certificate=certificate,
    )


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", password=PASSWORD)


def refused(response) -> bool:
    """The 400 saying why: plain text, or a problem document on the API (README, "API")."""
    if response.status_code != 400:
        return False
    if response["Content-Type"] == "application/problem+json":
        return response.json()["detail"] == BAD_REQUEST
    return response.content.decode() == BAD_REQUEST


# --- the cause --------------------------------------------------------------------------


def test_without_the_check_postgresql_answers_500(as_alice, shop, settings):
    """The cause, kept in view: the certificate list's search reaches the database as is,
    where PostgreSQL refuses the character (SQLite stores it and finds nothing)."""
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != CHECK]
    url = reverse("certificate_list") + "?q=%00"
    if connection.vendor == "postgresql":
        with pytest.raises(DataError, match="NUL"):
            as_alice.get(url)
    else:
        assert as_alice.get(url).status_code == 200


def test_the_check_comes_before_anything_reads_the_session_or_the_body():
    middleware = django_settings.MIDDLEWARE
    position = middleware.index(CHECK)
    assert middleware.index("certmgr.upload_limits.RequestBodyLimitMiddleware") < position
    for later in (
        "django.contrib.messages.middleware.MessageMiddleware",
        "monitoring.middleware.CertificateAlertMiddleware",
        "axes.middleware.AxesMiddleware",
    ):
        assert middleware.index(later) > position


# --- the list pages' filters --------------------------------------------------------------


def project_modules():
    """The application's own Python files (not the tests', not the virtualenv's)."""
    for folder in PROJECT.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in NOT_CODE:
            yield from folder.rglob("*.py")


# Functions and forms the views hand the whole query to, and the module (and class) whose
# reads count as theirs.
HANDED_TO = {
    "certificate_filters(": ("certificates/filters.py", None),
    "HistoryFiltersForm(": ("monitoring/forms.py", "HistoryFiltersForm"),
}


def parameters_read(module: Path, cls: str | None = None) -> set[str]:
    """The parameters a module (or one class of it) reads from a query it was handed:
    `query.get("name"` and the fields of the forms it binds to it (`name = forms.SomeField(`)."""
    text = module.read_text()
    if cls is not None:
        text = text[text.index(f"class {cls}(") :]
        text = text[: text.find("\nclass ", 1) % (len(text) + 1)]
    return set(re.findall(r"query\.get\(\s*\"(\w+)\"", text)) | set(
        re.findall(r"^\s+(\w+) = forms\.\w+Field\(", text, re.M)
    )


def test_the_list_of_query_parameters_is_complete():
    """Every `request.GET` in the project's code reads a named parameter listed above (or
    copies the query to build page links): a new filter cannot go untested."""
    reads: dict[str, set[str]] = {}
    for path in sorted(project_modules()):
        relative = path.relative_to(PROJECT).as_posix()
        if relative == "certmgr/request_checks.py":  # the check itself, reading them all
            continue
        text = path.read_text()
        for match in re.finditer(r"request\.GET\b", text):
            after = text[match.end() :]
            if after.startswith(".copy()"):
                continue
            handed = next(
                (
                    module
                    for call, module in HANDED_TO.items()
                    if text[: match.start()].rstrip().endswith(call)
                ),
                None,
            )
            if handed is not None:  # the whole query, to a function that reads it by name
                module, cls = handed
                reads.setdefault(relative, set()).update(parameters_read(PROJECT / module, cls))
                continue
            name = re.match(r"(?:\.get\(|\[)\s*\"(\w+)\"", after)
            assert name, f"{relative}: request.GET used otherwise than by a literal name"
            reads.setdefault(relative, set()).add(name.group(1))
    assert reads == QUERY_READERS


@pytest.mark.parametrize(
    ("page", "parameter"),
    [
        (page, parameter)
        for page, parameters in QUERY_PARAMETERS.items()
        for parameter in parameters
    ],
)
def test_each_filter_refuses_a_nul_and_takes_an_ordinary_value(as_alice, shop, page, parameter):
    url = reverse(page)
    for value in (NUL, f"shop{NUL}", f"{NUL}1"):
        response = as_alice.get(url, {parameter: value})
        assert refused(response), (parameter, value, response.status_code)
    assert as_alice.get(url, {parameter: "shop"}).status_code == 200
    assert as_alice.get(url, {parameter: "1"}).status_code == 200


@pytest.mark.parametrize("changelist", ADMIN_CHANGELISTS)
def test_the_admins_list_filters_refuse_a_nul(client, root, shop, changelist):
    client.force_login(root)
    url = reverse(changelist)
    for parameter in ADMIN_QUERY_PARAMETERS:
        assert refused(client.get(url, {parameter: NUL})), parameter
    assert refused(client.get(url, {f"x{NUL}": "1"}))  # in a parameter's name too
    assert client.get(url, {"q": "shop"}).status_code == 200


def test_the_admins_autocomplete_refuses_a_nul(client, root, shop):
    client.force_login(root)
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "term": NUL,
            "app_label": "saleschannels",
            "model_name": "saleschannel",
            "field_name": "certificate",
        },
    )
    assert refused(response)


# --- the rest of a request ----------------------------------------------------------------


def test_a_nul_in_the_session_cookie_is_refused(client):
    """http.cookies decodes the octal escape of a quoted value into a NUL, which reached the
    session table's query on every page, for anyone."""
    response = client.get(reverse("login"), HTTP_COOKIE='sessionid="abcdefghij\\000"')
    assert refused(response)
    assert response.wsgi_request.COOKIES["sessionid"] == "abcdefghij" + NUL


def test_a_nul_in_a_header_is_refused(client, alice):
    """django-axes stores the User-Agent of a failed login."""
    response = client.post(
        reverse("login"),
        {"username": "alice", "password": "not the password"},
        HTTP_USER_AGENT=f"agent{NUL}",
    )
    assert refused(response)


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_nul_in_the_login_form_is_refused(client, alice, field):
    data = {"username": "alice", "password": PASSWORD, field: f"x{NUL}y"}
    assert refused(client.post(reverse("login"), data))
    assert refused(client.post(reverse("admin:login"), data))
    assert (
        client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code
        == 302
    )


def test_a_nul_in_the_host_is_an_unknown_host(client):
    response = client.get(reverse("login"), HTTP_HOST=f"testserver{NUL}")
    assert response.status_code == 400


def test_a_nul_in_a_shop_hosts_challenge_token_is_refused(client, shop):
    url = reverse("acme_challenge", args=[f"token{NUL}"])
    assert refused(client.get(url, HTTP_HOST=SHOP_HOST))
    assert (
        client.get(reverse("acme_challenge", args=["token"]), HTTP_HOST=SHOP_HOST).status_code
        == 404
    )


def test_an_uploaded_file_may_hold_nul_bytes_a_field_may_not(as_alice, acme, pki):
    """DER is binary: the content of a file is no text the database stores as such."""
    leaf = demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["shop.example.test"])
    assert b"\x00" in leaf.der
    fields = {"institution": acme.pk, "certificate": upload("domain.cer", leaf.der)}
    response = as_alice.post(reverse("certificate_upload_ssl"), {**fields, "name": f"Shop{NUL}"})
    assert refused(response)
    assert not Certificate.objects.exists()
    fields["certificate"] = upload("domain.cer", leaf.der)
    response = as_alice.post(
        reverse("certificate_upload_ssl"),
        {
            **fields,
            "name": "Shop",
            "private_key": upload("domain.key", leaf.key_pem),
            "chain": upload("intermediate.crt", pki["intermediate"].certificate_pem),
        },
    )
    assert response.status_code == 302
    assert Certificate.objects.get().name == "Shop"


# --- every URL ------------------------------------------------------------------------------

# What fills an argument, by its converter: an ordinary value, and whether it can hold a NUL
# (int and slug cannot match one, so such a URL does not exist).
ORDINARY_VALUES = {
    "int": "1",
    "str": "token",
    "path": "1",
    "slug": "acme-tickets",
    "verification_token": "certmgr-token",
}
CAN_HOLD_NUL = {"str", "path"}
# Arguments of the admin's regular-expression patterns: a value their pattern allows, and
# whether it allows a NUL too.
REGEX_ARGUMENTS = {"app_label": ("certificates", False), "url": ("no-such-page/", True)}


def argument_converters(route: Route) -> dict[str, str]:
    """{argument: converter} as the pattern writes it; "regex" for a regular expression's."""
    written = dict(
        (name, converter or "str")
        for converter, name in re.findall(r"(?<!\?P)<(?:(\w+):)?(\w+)>", route.description)
    )
    converters = {}
    for argument in route.arguments:
        if argument in written:
            converters[argument] = written[argument]
        elif argument in REGEX_ARGUMENTS:
            converters[argument] = "regex"
        else:
            raise AssertionError(f"{route.label}: teach REGEX_ARGUMENTS a value for {argument!r}")
    return converters


def ordinary_value(argument: str, converter: str) -> str:
    if converter == "regex":
        return REGEX_ARGUMENTS[argument][0]
    return ORDINARY_VALUES[converter]


def can_hold_nul(argument: str, converter: str) -> bool:
    if converter == "regex":
        return REGEX_ARGUMENTS[argument][1]
    return converter in CAN_HOLD_NUL


def nul_paths(route: Route) -> list[str]:
    """The route's URL with ordinary arguments, then once with a NUL in each argument that can
    hold one."""
    converters = argument_converters(route)
    ordinary = {name: ordinary_value(name, kind) for name, kind in converters.items()}
    paths = [route.url(ordinary)]
    for name, kind in converters.items():
        if can_hold_nul(name, kind):
            paths.append(route.url({**ordinary, name: f"{ordinary[name]}{NUL}x"}))
    return paths


@pytest.fixture
def visitors(alice, root) -> dict[str, Client]:
    clients = {"anonymous": Client(), "alice": Client(), "root": Client()}
    clients["alice"].force_login(alice)
    clients["root"].force_login(root)
    for client in clients.values():
        client.raise_request_exception = False
    return clients


def test_every_url_refuses_a_nul_and_never_answers_500(visitors, shop):
    """Every URL pattern: a NUL in the query, in a path argument, in a POSTed field; on the
    back office (400 before any view) and on a shop's hostname (which answers its two
    /.well-known/ paths only, 404 elsewhere)."""
    routes = routes_all()
    assert len(routes) > 50  # the admin's included
    failures = []
    walked = 0
    for route in routes:
        for path in nul_paths(route):
            has_nul_argument = "%00" in path
            for who, client in visitors.items():
                answers = {
                    "GET ?q=%00&page=%00": client.get(f"{path}?q=%00&page=%00"),
                    "POST name=NUL": client.post(path, {"name": f"x{NUL}", "q": NUL}),
                    "GET shop host": client.get(f"{path}?q=%00", HTTP_HOST=SHOP_HOST),
                }
                if has_nul_argument:
                    answers["GET"] = client.get(path)
                for how, response in answers.items():
                    walked += 1
                    on_shop = how == "GET shop host"
                    shop_path = path.startswith("/.well-known/")
                    expected_refusal = not on_shop or shop_path
                    if response.status_code >= 500 or (expected_refusal and not refused(response)):
                        failures.append(f"{who} {how} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert walked > 500


def test_every_url_answers_ordinary_odd_values_without_500(visitors, shop):
    """The control: the same walk without a NUL is not refused by the check, and answers no
    500 either (a filter given nonsense ignores it)."""
    failures = []
    for route in routes_all():
        path = nul_paths(route)[0]
        for who, client in visitors.items():
            response = client.get(f"{path}?q=%01&page=x&sort=x&institution=x&expires_after=x")
            if response.status_code >= 500 or refused(response):
                failures.append(f"{who} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)
