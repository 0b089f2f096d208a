"""A fast structural pre-check of R4 JSON that can only say "valid", never "invalid".

:func:`smartcare.hospital.fhir.validation.validate` builds the ``fhir.resources`` R4B pydantic model
of every resource, which costs most of an ingest. Most resources are valid, so this module first
walks the JSON against a table read from those same model classes (their fields, aliases, list-ness,
required elements and choice groups, the ``one_of_many`` rules of FHIR R4 formats.html#choice) and
answers True only when every rule the models apply is met:

- every key is a field alias of its model (``extra="forbid"``);
- complex elements are JSON objects checked recursively, lists are lists without nulls;
- primitive values pass the very pydantic validator of their field type (a ``TypeAdapter`` of the
  field's own annotation, so the regexes and conversions are the library's), memoised per value;
- required elements are present and choice groups have at most one (or exactly one) value.

Anything it does not model (``_element`` primitive extensions, ``contained`` and other resource-typed
fields, nulls, classes with extra validators) answers False, and the caller then runs the full
pydantic validation, which produces the error report. So a True here always agrees with pydantic;
tests/hospital/fhir/test_fhir_validation_fast.py checks that on the official examples and on broken ones.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

from pydantic import TypeAdapter

# Model config keys that do not change how a field value is validated.
_HARMLESS_CONFIG = {"extra", "validate_assignment", "populate_by_name", "title", "defer_build"}
# The model validators every FHIR model has (fhir_core.fhirabstractmodel); their rules are modelled here.
_KNOWN_VALIDATORS = {"reject_null_complex_elements", "validate_after_model_construction"}
# FHIRAbstractModel's methods behind the rules modelled here (a subclass that overrides one is not modelled).
_OVERRIDABLE = frozenset(
    {
        "__init__",
        "reject_null_complex_elements",
        "validate_after_model_construction",
        "_validate_one_of_many",
        "_validate_required_primitive_elements",
        "model_validate",
        "model_post_init",
    }
)
_RESOURCE = object  # marks a field holding any resource (see :func:`_resource_ok`)
_MISSING = object()
_SPECS: dict[type, Any] = {}  # model class -> _Spec or None, filled by :func:`_check`
_PRIMITIVE_TYPES = frozenset({str, int, float, bool})
_PRIMITIVE_MEMO: dict[tuple[TypeAdapter, type, Any], bool] = {}
_PRIMITIVE_MEMO_MAX = 200_000


class _Spec:
    """The rules of one model class: ``fields`` maps an alias to (is_list, FHIR type of a complex
    element or None, primitive adapter or None); ``required`` aliases; ``choices`` as (aliases, required)."""

    __slots__ = ("fields", "required", "choices", "resource_type")

    def __init__(self, fields, required, choices, resource_type) -> None:
        self.fields: dict[str, tuple[bool, type | None, TypeAdapter | None]] = fields
        self.required: tuple[str, ...] = required
        self.choices: tuple[tuple[tuple[str, ...], bool], ...] = choices
        self.resource_type: str = resource_type


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return annotation


def _field(annotation: Any) -> tuple[bool, type | None, TypeAdapter | None] | None:
    """(is_list, FHIR element type, primitive adapter) of a field annotation; None when not modelled."""
    from fhir_core.types import FhirBase, FhirElementOrResourceBase

    inner = _strip_optional(annotation)
    is_list = typing.get_origin(inner) in (list, typing.List)  # noqa: UP006 - typing.List is what models use
    if is_list:
        (inner,) = typing.get_args(inner)
        inner = _strip_optional(inner)  # primitive lists allow nulls (which make the check answer False)
    if inner is None or typing.get_origin(inner) in (typing.Union, types.UnionType, list):
        return None
    if isinstance(inner, type) and issubclass(inner, FhirBase):
        if issubclass(inner, FhirElementOrResourceBase):  # contained, Bundle.entry.resource...
            if inner.get_model_klass().__name__ != "Resource":
                return None
            return is_list, _RESOURCE, inner._prefix  # the class follows each value's resourceType
        return is_list, inner, None  # the model class is imported when first needed (:func:`_check`)
    return is_list, None, _adapter(inner)


@cache
def _adapter(annotation: Any) -> TypeAdapter:
    """One validator per primitive type (``Annotated[str, Code()]``...), shared by every field of that type."""
    return TypeAdapter(annotation)


def _spec(cls: type) -> _Spec | None:
    """The rules of model class ``cls``; None when the class does something this module does not model."""
    try:
        return _read_spec(cls)
    except Exception:  # an unexpected model shape: never fast-accept, let pydantic decide
        return None


def _read_spec(cls: type) -> _Spec | None:
    from fhir_core.fhirabstractmodel import FHIRAbstractModel

    for klass in cls.__mro__:  # the rules modelled here are FHIRAbstractModel's: no class may change them
        if klass is FHIRAbstractModel:
            break
        if _OVERRIDABLE & set(vars(klass)):
            return None
    else:
        return None
    decorators = cls.__pydantic_decorators__
    if decorators.field_validators or decorators.validators or decorators.root_validators:
        return None
    if set(decorators.model_validators) - _KNOWN_VALIDATORS or set(cls.model_config) - _HARMLESS_CONFIG:
        return None
    fields: dict[str, tuple[bool, type | None, TypeAdapter | None]] = {}
    required: list[str] = []
    alias_of = {}
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        alias_of[name] = alias
        if name == "fhir_comments" or name.endswith("__ext") or alias.startswith("_"):
            continue  # not modelled: such keys make the check answer False
        rule = _field(info.annotation)
        if rule is not None:
            fields[alias] = rule
        if info.is_required():
            required.append(alias)
    for name, _ext in cls.get_required_fields(None):
        required.append(alias_of[name])
    choices = []
    for names in cls.get_one_of_many_fields(None).values():
        extra = cls.model_fields[names[0]].json_schema_extra or {}
        choices.append((tuple(alias_of[n] for n in names), extra.get("one_of_many_required") is True))
    return _Spec(fields, tuple(dict.fromkeys(required)), tuple(choices), cls.__resource_type__)


def _primitive(adapter: TypeAdapter, value: Any) -> bool:
    """Whether ``adapter`` accepts ``value`` (a JSON scalar), memoised by (adapter, type, value)."""
    if type(value) not in _PRIMITIVE_TYPES:
        return False
    key = (adapter, type(value), value)
    ok = _PRIMITIVE_MEMO.get(key)
    if ok is None:
        try:  # a value that validates to None would count as absent for the required/choice rules
            ok = adapter.validate_python(value) is not None
        except Exception:  # ValidationError mostly; anything else also means "not surely valid"
            ok = False
        if len(_PRIMITIVE_MEMO) >= _PRIMITIVE_MEMO_MAX:
            _PRIMITIVE_MEMO.clear()
        _PRIMITIVE_MEMO[key] = ok
    return ok


def _resource_ok(prefix: str, item: Any) -> bool:
    """A resource inside a resource, checked as ``FhirElementOrResourceBase`` does: the model class is
    the one registered for its ``resourceType`` and must derive from Resource."""
    from fhir_core.types import FHIR_TYPES_MAPS

    if type(item) is not dict or not isinstance(item.get("resourceType"), str):
        return False
    path = FHIR_TYPES_MAPS.get(prefix + item["resourceType"] + "Type")
    if path is None:
        return False
    cls = _import(path)
    return cls.has_resource_base() and _check(cls, item)


@cache
def _import(path: str) -> type:
    from fhir_core.types import import_string  # what FhirElementOrResourceBase uses

    return import_string(path)


def _check(cls: type, data: dict[str, Any]) -> bool:
    spec = _SPECS.get(cls, _MISSING)
    if spec is _MISSING:
        spec = _SPECS[cls] = _spec(cls)
    if spec is None:
        return False
    fields = spec.fields
    for key, value in data.items():
        rule = fields.get(key)
        if rule is None:
            if key == "resourceType" and value == spec.resource_type:
                continue
            return False
        is_list, model, adapter = rule
        if is_list:
            if type(value) is not list:
                return False
            items = value
        else:
            items = (value,)
        if model is _RESOURCE:
            for item in items:
                if not _resource_ok(adapter, item):
                    return False
        elif model is not None:
            cls_ = model.get_model_klass()
            for item in items:
                if type(item) is not dict or not _check(cls_, item):
                    return False
        else:
            for item in items:
                if type(item) not in _PRIMITIVE_TYPES:
                    return False
                ok = _PRIMITIVE_MEMO.get((adapter, type(item), item))
                if ok is None:
                    ok = _primitive(adapter, item)
                if not ok:
                    return False
    for alias in spec.required:
        if alias not in data:
            return False
    for aliases, needed in spec.choices:
        n = sum(1 for a in aliases if a in data)
        if n > 1 or (needed and n == 0):
            return False
    return True


def surely_valid(cls: type, resource: dict[str, Any]) -> bool:
    """True only if ``cls.model_validate(resource)`` is certain to succeed (``cls`` an R4B model class)."""
    return type(resource) is dict and _check(cls, resource)
