"""Tenant isolation in the Django admin's change forms, proven over every registered model.

tests/certmgr/test_isolation.py walks every admin page as people outside an institution, and
as staff for what pages show. This walk is staff *writing*: for every model the admin
registers that has a link to an institution (its `institution`, or a foreign key to an
object that belongs to one), each of Acme's rows' change form is opened as Sam (staff), filled
as the page fills it, and posted back with the link pointing at the Opera's institution or
object instead. Whatever the admin answers (the field read-only and ignored, a form error, a
403), no row may change and no object of one institution may come to point at another's.
A new model registered later is walked without anyone listing it; a link the admin may change
by design is in MOVES_ALLOWED with the reason.

So that the walk provably posts forms the admin accepts, each form is first posted back
unchanged and must be saved (302); each request is rolled back after it is looked at.
"""

from html.parser import HTMLParser

import pytest
from django.contrib import admin as django_admin
from django.urls import reverse

from certificates.admin import CertificateAdmin
from certificates.models import Certificate
from institutions.models import Institution
from tests.certmgr import test_isolation as isolation
from tests.certmgr.test_isolation import (
    TENANT_ROWS,
    Findings,
    Tenant,
    Visitor,
    cross_tenant_links,
    database_rows,
    stored_secrets,
)
from tests.leaks import Secrets

pytestmark = pytest.mark.django_db

# The walk's fixtures under names of this module's: Acme and the Opera with one of every
# object, and (autouse) fast password hashing for the cast's logins.
tenant_world = isolation.tenants
fast_password_hashing = isolation._fast_password_hashing

# Links the admin may point at another institution by design.
MOVES_ALLOWED = {
    ("institutions.Membership", "institution"): (
        "A membership says which institution a user belongs to: moving one is what the admin "
        "is for, and nothing else of the institution's points at it."
    ),
}


def belongs_to_institution(model) -> bool:
    return any(
        field.name == "institution" and field.many_to_one and field.concrete
        for field in model._meta.get_fields()
    )


def tenant_links(model) -> list:
    """The model's foreign keys that name an institution or an object belonging to one."""
    return [
        field
        for field in model._meta.concrete_fields
        if (field.many_to_one or field.one_to_one)
        and (field.related_model is Institution or belongs_to_institution(field.related_model))
        and (model._meta.label, field.name) not in MOVES_ALLOWED
    ]


def other_object(field, tenant: Tenant):
    """An object of `tenant`'s the field could name: its institution, or the tenant's object
    of that model the back office would most likely offer (an SSL certificate, an identity
    proof), else its first."""
    related = field.related_model
    if related is Institution:
        return tenant.institution
    choices = related.objects.filter(TENANT_ROWS[related._meta.label](tenant))
    choices = choices.complex_filter(field.get_limit_choices_to() or {})
    for preferred in (tenant.ssl, tenant.proof, tenant.box_office):
        if isinstance(preferred, related) and choices.filter(pk=preferred.pk).exists():
            return preferred
    return choices.order_by("pk").first()


class AdminFormFields(HTMLParser):
    """The fields a browser would post from the admin's change form (`<form id="..._form">`):
    inputs as they are (checkboxes and radios when checked), selected options, textareas, and
    the Save button."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.select: str | None = None
        self.textarea: str | None = None
        self.text = ""
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self.fields.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        elif not self.inside:
            return
        elif tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.add(attrs["name"], attrs.get("value") or "on")
            elif kind == "submit":
                if attrs["name"] == "_save":
                    self.add("_save", attrs.get("value") or "")
            elif kind != "file":
                self.add(attrs["name"], attrs.get("value") or "")
        elif tag == "select":
            self.select = attrs.get("name")
        elif tag == "option" and self.select and "selected" in attrs:
            self.add(self.select, attrs.get("value") or "")
        elif tag == "textarea":
            self.textarea, self.text = attrs.get("name"), ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.add(self.textarea, self.text.removeprefix("\n"))  # as browsers read it
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.text += data


def change_form_data(response, model) -> dict[str, list[str]]:
    parser = AdminFormFields(f"{model._meta.model_name}_form")
    parser.feed(response.content.decode())
    assert parser.fields, f"no change form on {response.request['PATH_INFO']}"
    return parser.fields


def attempt_moves(visitor: Visitor, owner: Tenant, other: Tenant, secrets: Secrets) -> Findings:
    """Post every change form of the owner's rows with each of its links pointing at the
    other tenant's object; what went wrong, with the request that did it."""
    findings = Findings()
    for model, model_admin in django_admin.site._registry.items():
        links = tenant_links(model)
        if not links:
            continue
        label = model._meta.label
        rows = model.objects.filter(TENANT_ROWS[label](owner)).order_by("pk")
        assert rows.exists(), f"the fixture made no {label} of {owner.title}'s"
        for row in rows:
            url = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[row.pk]
            )
            page = visitor.send("get", url)
            assert page.status_code == 200, (url, page.status_code)
            changeable = page.context["has_change_permission"]
            data = change_form_data(page, model) if changeable else {"_save": ["Save"]}
            if changeable:  # the control: the form as shown is accepted
                unchanged = visitor.send("post", url, data, rolled_back=True)
                if unchanged.status_code != 302:
                    errors = unchanged.context["adminform"].form.errors.as_data()
                    findings.problems.append(f"{url} as shown -> {unchanged.status_code}: {errors}")
            for field in links:
                target = other_object(field, other)
                if target is None:
                    continue
                label_of = f"staff POST {url} {field.name}={other.title}'s {target!r}"
                before = database_rows()

                def look(response, label_of=label_of, before=before):
                    findings.check(label_of, response, secrets=secrets)
                    if response.status_code not in (200, 302, 403):
                        findings.problems.append(f"{label_of} -> {response.status_code}")
                    if database_rows() != before:
                        findings.problems.append(f"{label_of}: rows changed")
                    findings.problems.extend(
                        f"{label_of}: {link} now names another institution's"
                        for link in cross_tenant_links()
                    )

                visitor.send(
                    "post",
                    url,
                    {**data, field.name: [str(target.pk)]},
                    rolled_back=True,
                    before_rollback=look,
                )
    return findings


def test_no_admin_change_form_moves_an_object_to_another_institution(tenant_world, sam):
    """Sam, staff, posts every change form of Acme's rows naming the Opera's institution or
    objects in each link: nothing changes, nothing comes to point across institutions."""
    acme, opera = tenant_world["acme"], tenant_world["opera"]
    rows_before = database_rows()

    findings = attempt_moves(Visitor(sam), acme, opera, stored_secrets())

    findings.assert_none()
    assert database_rows() == rows_before
    walked = {model._meta.label for model in django_admin.site._registry if tenant_links(model)}
    assert walked >= {
        "certificates.Certificate",
        "certificates.CertificateRequest",
        "saleschannels.SalesChannel",
        "core.AuditEvent",
    }
    assert findings.requests > 20


def test_the_admin_walk_catches_a_certificate_that_can_be_moved(tenant_world, sam, monkeypatch):
    """The negative control: with a certificate's institution editable in the admin and its
    model check switched off, the walk reports Acme's certificates moved to the Opera, the
    box office's among them, which Acme's channel then points at."""
    monkeypatch.setattr(CertificateAdmin, "editable_fields", ("name", "institution"))
    monkeypatch.setattr(Certificate, "clean", lambda self: None)
    acme, opera = tenant_world["acme"], tenant_world["opera"]

    problems = "\n".join(attempt_moves(Visitor(sam), acme, opera, Secrets()).problems)

    assert f"/admin/certificates/certificate/{acme.ssl.pk}/change/ institution=" in problems
    assert "rows changed" in problems
    assert "saleschannels.SalesChannel" in problems and "now names another institution" in problems
