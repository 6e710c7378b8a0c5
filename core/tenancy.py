"""Whether an object of one institution is linked to an object of another.

Every object of the back office belongs to an institution (its `institution` foreign key), and
a foreign key between two such objects must join objects of the same institution: a channel of
one institution serving another's certificate would show that certificate's name to the wrong
people and link them to a page they cannot open. The back office's forms and services only
ever offer an institution's own objects; this check is for what bypasses them (the Django
admin, through the models' clean()).

At the bottom of the apps, so it knows the models only by their `institution` field.
"""

from django.core.exceptions import FieldDoesNotExist, ValidationError

INSTITUTION_FIELD = "institution"


def belongs_to_institution(model) -> bool:
    """True when the model's rows belong to an institution (a foreign key named so)."""
    try:
        field = model._meta.get_field(INSTITUTION_FIELD)
    except FieldDoesNotExist:
        return False
    return field.concrete and field.many_to_one


def foreign_institution_links(instance) -> list[str]:
    """The links between `instance`, as it is in memory (saved or not), and objects of another
    institution, in words: its own foreign keys to them, and theirs to it. Empty for an object
    that belongs to no institution. One query per link that is set."""
    model = type(instance)
    if not belongs_to_institution(model):
        return []
    institution_id = getattr(instance, f"{INSTITUTION_FIELD}_id")
    found = []
    for field in model._meta.concrete_fields:
        if field.name == INSTITUTION_FIELD or not (field.many_to_one or field.one_to_one):
            continue
        target_id = getattr(instance, field.attname)
        if target_id is None or not belongs_to_institution(field.related_model):
            continue
        targets = field.related_model._default_manager.filter(pk=target_id)
        if targets.exclude(institution_id=institution_id).exists():
            found.append(f"its {field.verbose_name} belongs to another institution")
    if instance.pk is None:
        return found
    for relation in model._meta.related_objects:
        related = relation.related_model
        if not (relation.one_to_many or relation.one_to_one):
            continue  # a many-to-many has no single field to read
        if not belongs_to_institution(related):
            continue
        pointing = related._default_manager.filter(**{relation.field.name: instance.pk})
        if pointing.exclude(institution_id=institution_id).exists():
            found.append(
                f"{related._meta.verbose_name_plural} of another institution name it as their "
                f"{relation.field.verbose_name}"
            )
    return found


def foreign_institution_links_refuse(instance) -> None:
    """Raise ValidationError, in words, when `instance` is linked to another institution's
    objects: a model's clean() calls it, so that every ModelForm (the admin's) refuses."""
    links = foreign_institution_links(instance)
    if links:
        raise ValidationError(
            "Objects of different institutions cannot point at each other: "
            f"{'; '.join(links)}. Change those links in the back office first."
        )
