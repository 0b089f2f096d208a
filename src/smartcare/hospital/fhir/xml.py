"""FHIR R4 XML <-> FHIR JSON (FHIR R4 xml.html and json.html, "Representations").

- The root element is the resource type, in the namespace ``http://hl7.org/fhir``.
- A primitive is an element with a ``value`` attribute. Its ``id`` attribute and ``extension``
  children map to the JSON ``_name`` object; for repeating primitives both JSON arrays are aligned
  with ``null`` fillers.
- Repeating elements are repeated XML elements; JSON arrays follow the R4 cardinalities, from
  :mod:`smartcare.hospital.fhir.xmldefs` (the R4 definitions as data). Elements are written in
  definition order.
- ``id`` of a (non-resource) element and ``Extension.url`` are XML attributes.
- Nested resources (``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource``)
  are wrapped: ``<contained><Patient>...</Patient></contained>``.
- Choice elements (``value[x]``) keep their typed name (``valueQuantity``) in both forms.
- ``Narrative.div`` is XHTML: JSON carries its source text, XML embeds it. XML -> JSON copies the
  div's source text byte for byte, so narrative round-trips exactly.

Parsing uses ``defusedxml`` (no DTDs, entity declarations or external references). Problems raise
:class:`FhirXmlError` naming the element path and, for XML input, the line.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from smartcare.core.errors import SmartcareError
from smartcare.hospital.fhir.xmldefs import PRIMITIVES, element_table

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_INTEGER = re.compile(r"^[-+]?[0-9]+$")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']")


class FhirXmlError(SmartcareError):
    """XML that is not well-formed, or FHIR content that cannot be mapped; ``path`` names the element."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# -- JSON -> XML -------------------------------------------------------------------------------------
def _attr(value: str) -> str:
    if _BAD_CHARS.search(value):
        raise ValueError("contains a character that XML 1.0 cannot carry")
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def _primitive_text(kind: str, value: Any, path: str) -> str:
    if isinstance(value, bool):
        if kind != "boolean":
            raise FhirXmlError(f"{path}: a boolean where a {kind} is expected", path)
        return "true" if value else "false"
    if isinstance(value, int | float):
        if kind not in ("integer", "decimal"):
            raise FhirXmlError(f"{path}: a number where a {kind} is expected", path)
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise FhirXmlError(f"{path}: expected a primitive {kind}, got {type(value).__name__}", path)


class _Writer:
    def __init__(self, pretty: bool) -> None:
        self.types, self.resources = element_table()
        self.pretty = pretty
        self.out: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.out.append(("\n" + "  " * depth if self.pretty and self.out else "") + text)

    def resource(self, res: Any, depth: int, path: str) -> None:
        rtype = res.get("resourceType") if isinstance(res, dict) else None
        if rtype not in self.resources:
            raise FhirXmlError(f"{path}: not a resource with a known resourceType ({rtype!r})", path)
        ns = f' xmlns="{FHIR_NS}"' if depth == 0 else ""
        self.emit(depth, f"<{rtype}{ns}>")
        self.children(rtype, res, depth + 1, rtype if depth == 0 else path, resource=True)
        self.emit(depth, f"</{rtype}>")

    def children(self, tname: str, obj: dict[str, Any], depth: int, path: str, resource: bool) -> None:
        defs = self.types[tname]
        for key in obj:
            base = key[1:] if key.startswith("_") else key
            if base not in defs and not (resource and key == "resourceType"):
                raise FhirXmlError(f"{path}.{key}: unknown element for {tname}", f"{path}.{key}")
        for el, (code, is_array) in defs.items():
            if (el == "id" and not resource) or (el == "url" and tname == "Extension"):
                continue  # XML attributes
            value, ext = obj.get(el), obj.get("_" + el)
            if value is None and ext is None:
                continue
            where = f"{path}.{el}"
            if ext is not None and code not in PRIMITIVES:
                raise FhirXmlError(f"{path}._{el}: only primitive elements have a _{el} form", where)
            if any(isinstance(v, list) != is_array for v in (value, ext) if v is not None):
                raise FhirXmlError(f"{where}: expected {'an array' if is_array else 'a single value'}", where)
            values, exts = (value, ext) if is_array else ([value], [ext])
            if code in PRIMITIVES and code != "xhtml":
                values, exts = values or [], exts or []
                for i in range(max(len(values), len(exts))):
                    v = values[i] if i < len(values) else None
                    x = exts[i] if i < len(exts) else None
                    self.primitive(el, code, v, x, depth, f"{where}[{i}]" if is_array else where)
                continue
            for i, item in enumerate(values):
                item_path = f"{where}[{i}]" if is_array else where
                if code == "xhtml":
                    self.emit(depth, _xhtml(item, item_path))
                elif code == "Resource":
                    self.emit(depth, f"<{el}>")
                    self.resource(item, depth + 1, item_path)
                    self.emit(depth, f"</{el}>")
                else:
                    self.complex(el, code, item, depth, item_path)

    def complex(self, el: str, code: str, item: Any, depth: int, path: str) -> None:
        if not isinstance(item, dict):
            raise FhirXmlError(f"{path}: expected an object ({code})", path)
        attrs = ""
        for name in ("id", "url") if code == "Extension" else ("id",):
            if name in item:
                if not isinstance(item[name], str):
                    raise FhirXmlError(f"{path}.{name}: expected a string", f"{path}.{name}")
                attrs += f' {name}="{self.escape(item[name], f"{path}.{name}")}"'
        start = len(self.out)
        self.emit(depth, f"<{el}{attrs}>")
        self.children(code, item, depth + 1, path, resource=False)
        if len(self.out) == start + 1:
            self.out[-1] = self.out[-1][:-1] + "/>"
        else:
            self.emit(depth, f"</{el}>")

    def primitive(self, el: str, kind: str, value: Any, ext: Any, depth: int, path: str) -> None:
        attrs = ""
        if ext is not None:
            if not isinstance(ext, dict) or set(ext) - {"id", "extension"}:
                raise FhirXmlError(f"{path}: the _{el} object may hold only id and extension", path)
            if "id" in ext:
                attrs += f' id="{self.escape(str(ext["id"]), path)}"'
        if value is not None:
            attrs += f' value="{self.escape(_primitive_text(kind, value, path), path)}"'
        elif ext is None:
            raise FhirXmlError(f"{path}: null without an id or extension", path)
        extensions = (ext or {}).get("extension") or []
        if not extensions:
            self.emit(depth, f"<{el}{attrs}/>")
            return
        self.emit(depth, f"<{el}{attrs}>")
        for i, x in enumerate(extensions):
            self.complex("extension", "Extension", x, depth + 1, f"{path}.extension[{i}]")
        self.emit(depth, f"</{el}>")

    @staticmethod
    def escape(value: str, path: str) -> str:
        try:
            return _attr(value)
        except ValueError as err:
            raise FhirXmlError(f"{path}: {err}", path) from None


def _xhtml(div: Any, path: str) -> str:
    if not isinstance(div, str) or not div.startswith("<div"):
        raise FhirXmlError(f"{path}: the narrative div must be an XHTML string starting with <div", path)
    try:
        root = _parse(div.encode("utf-8"))[0]
    except FhirXmlError as err:
        raise FhirXmlError(f"{path}: the narrative div is not well-formed XHTML: {err}", path) from None
    if root.tag != f"{{{XHTML_NS}}}div":
        raise FhirXmlError(f"{path}: the narrative must be a <div> in the namespace {XHTML_NS}", path)
    return div


def to_xml(resource: dict[str, Any], *, pretty: bool = False) -> str:
    """FHIR JSON ``resource`` -> FHIR XML text. Raises :class:`FhirXmlError` for content XML cannot hold
    (unknown elements, wrong JSON kinds, characters outside XML 1.0)."""
    writer = _Writer(pretty)
    writer.resource(resource, 0, str(resource.get("resourceType")) if isinstance(resource, dict) else "$")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + "".join(writer.out)


# -- XML -> JSON -------------------------------------------------------------------------------------
class _Builder(ET.TreeBuilder):
    """Records each element's line and, for XHTML divs, the byte span of its source text."""

    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None
        self.lines: dict[int, int] = {}
        self.spans: dict[int, tuple[int, int]] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        elem = super().start(tag, attrs)
        expat = self.parser.parser
        self.lines[id(elem)] = expat.CurrentLineNumber
        if tag == f"{{{XHTML_NS}}}div":
            self.spans[id(elem)] = (expat.CurrentByteIndex, -1)
        return elem

    def end(self, tag: str) -> ET.Element:
        elem = super().end(tag)
        if id(elem) in self.spans:
            self.spans[id(elem)] = (self.spans[id(elem)][0], self.parser.parser.CurrentByteIndex)
        return elem


def _parse(data: bytes) -> tuple[ET.Element, _Builder]:
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    builder.parser = parser
    try:
        parser.feed(data)
        return parser.close(), builder
    except ET.ParseError as err:
        raise FhirXmlError(f"Malformed XML: {err}") from None
    except DefusedXmlException as err:
        name = type(err).__name__
        raise FhirXmlError(f"Forbidden XML construct ({name}): DTDs and entities are not allowed") from None


class _Reader:
    def __init__(self, data: bytes, builder: _Builder) -> None:
        self.types, self.resources = element_table()
        self.data = data
        self.builder = builder
        match = _ENCODING.match(data)
        self.encoding = match.group(1).decode() if match else "utf-8"
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16-le" if data.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"

    def fail(self, elem: ET.Element, message: str, path: str) -> FhirXmlError:
        line = self.builder.lines.get(id(elem))
        return FhirXmlError(f"{message} (line {line})" if line else message, path)

    def name(self, elem: ET.Element, path: str) -> str:
        if not isinstance(elem.tag, str) or not elem.tag.startswith(f"{{{FHIR_NS}}}"):
            raise self.fail(elem, f"{path}: element <{elem.tag}> is not in the FHIR namespace {FHIR_NS}", path)
        return elem.tag[len(FHIR_NS) + 2 :]

    def resource(self, elem: ET.Element, path: str) -> dict[str, Any]:
        rtype = self.name(elem, path)
        if rtype not in self.resources:
            raise self.fail(elem, f"{path}: <{rtype}> is not an R4 resource type", path)
        out: dict[str, Any] = {"resourceType": rtype}
        path = rtype if path == "$" else path
        self.children(rtype, elem, out, path, resource=True)
        return out

    def children(self, tname: str, elem: ET.Element, out: dict[str, Any], path: str, resource: bool) -> None:
        defs = self.types[tname]
        for attr, value in elem.attrib.items():
            if attr.startswith("{"):
                continue  # attributes of other namespaces (xsi:schemaLocation) carry no FHIR content
            if (attr == "id" and not resource) or (attr == "url" and tname == "Extension"):
                out[attr] = value
            else:
                raise self.fail(elem, f"{path}: unexpected attribute {attr!r}", path)
        if elem.text and elem.text.strip():
            raise self.fail(elem, f"{path}: unexpected text {elem.text.strip()[:40]!r}", path)
        arrays: dict[str, tuple[list[Any], list[Any]]] = {}
        for child in elem:
            if child.tail and child.tail.strip():
                raise self.fail(elem, f"{path}: unexpected text {child.tail.strip()[:40]!r}", path)
            if child.tag is ET.Comment or child.tag is ET.ProcessingInstruction:
                continue
            if child.tag == f"{{{XHTML_NS}}}div" and defs.get("div", ("",))[0] == "xhtml":
                if "div" in out:
                    raise self.fail(child, f"{path}.div: repeats, but R4 allows at most one", f"{path}.div")
                out["div"] = self.xhtml(child)
                continue
            el = self.name(child, f"{path}.?")
            where = f"{path}.{el}"
            if el not in defs or (el == "id" and not resource) or (el == "url" and tname == "Extension"):
                raise self.fail(child, f"{where}: unknown element for {tname}", where)
            code, is_array = defs[el]
            if not is_array and (el in out or f"_{el}" in out):
                raise self.fail(child, f"{where}: repeats, but R4 allows at most one", where)
            if code in PRIMITIVES:
                value, ext = self.primitive(child, code, where)
                if is_array:
                    values, exts = arrays.setdefault(el, ([], []))
                    values.append(value)
                    exts.append(ext)
                else:
                    if value is not None:
                        out[el] = value
                    if ext is not None:
                        out[f"_{el}"] = ext
                continue
            if code == "Resource":
                inner = [c for c in child if c.tag is not ET.Comment]
                if len(inner) != 1 or child.attrib:
                    raise self.fail(child, f"{where}: must hold exactly one resource", where)
                item = self.resource(inner[0], where)
            else:
                item = {}
                self.children(code, child, item, where, resource=False)
            if is_array:
                out.setdefault(el, []).append(item)
            else:
                out[el] = item
        for el, (values, exts) in arrays.items():
            if any(v is not None for v in values):
                out[el] = values
            if any(x is not None for x in exts):
                out[f"_{el}"] = exts

    def primitive(self, elem: ET.Element, kind: str, path: str) -> tuple[Any, dict[str, Any] | None]:
        if kind == "xhtml":
            raise self.fail(elem, f"{path}: the narrative must be a <div> in the namespace {XHTML_NS}", path)
        ext: dict[str, Any] = {}
        value: Any = None
        if elem.text and elem.text.strip():
            raise self.fail(elem, f"{path}: unexpected text {elem.text.strip()[:40]!r}; use the value attribute", path)
        for attr, text in elem.attrib.items():
            if attr.startswith("{"):
                continue
            if attr == "id":
                ext["id"] = text
            elif attr == "value":
                value = self.convert(elem, kind, text, path)
            else:
                raise self.fail(elem, f"{path}: unexpected attribute {attr!r}", path)
        for i, child in enumerate(c for c in elem if c.tag is not ET.Comment):
            if self.name(child, path) != "extension":
                raise self.fail(child, f"{path}: a primitive may only hold extensions", path)
            item: dict[str, Any] = {}
            self.children("Extension", child, item, f"{path}.extension[{i}]", resource=False)
            ext.setdefault("extension", []).append(item)
        if value is None and not ext:
            raise self.fail(elem, f"{path}: has neither a value nor an extension", path)
        return value, ext or None

    def convert(self, elem: ET.Element, kind: str, text: str, path: str) -> Any:
        if kind == "boolean":
            if text not in ("true", "false"):
                raise self.fail(elem, f"{path}: {text!r} is not a boolean (true|false)", path)
            return text == "true"
        if kind == "integer":
            if not _INTEGER.match(text):
                raise self.fail(elem, f"{path}: {text!r} is not an integer", path)
            return int(text)
        if kind == "decimal":
            if not _DECIMAL.match(text):
                raise self.fail(elem, f"{path}: {text!r} is not a decimal", path)
            return int(text) if _INTEGER.match(text) else float(text)
        return text

    def xhtml(self, elem: ET.Element) -> str:
        start, end = self.builder.spans[id(elem)]
        data = self.data
        close, gt = "</div".encode(self.encoding), ">".encode(self.encoding)
        if data.startswith(close, end):
            after = data[end + len(close) : end + len(close) + len(gt)].decode(self.encoding, "replace")
            if after in (">", " ", "\t", "\n", "\r"):
                end = data.index(gt, end) + len(gt)
        raw = data[start:end].decode(self.encoding)
        head = raw.split(">", 1)[0]
        if raw.startswith("<div") and (f'xmlns="{XHTML_NS}"' in head or f"xmlns='{XHTML_NS}'" in head):
            return raw
        try:
            return ET.tostring(elem, encoding="unicode", default_namespace=XHTML_NS)
        except ValueError as err:
            raise self.fail(elem, f"Narrative.div: not plain XHTML ({err})", "div") from None


def from_xml(data: bytes | str) -> dict[str, Any]:
    """FHIR XML -> FHIR JSON dict. Raises :class:`FhirXmlError` for malformed XML, DTDs/entities,
    unknown elements, repeated single elements, or values of the wrong primitive type."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if isinstance(data, str):
        raw = re.sub(rb"^(\s*<\?xml[^>]*?)\s+encoding=[\"'][^\"']*[\"']", rb"\1", raw)
    if not raw.strip():
        raise FhirXmlError("Empty XML body")
    root, builder = _parse(raw)
    return _Reader(raw, builder).resource(root, "$")
