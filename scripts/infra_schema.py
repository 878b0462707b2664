#!/usr/bin/env python3
"""Checks every resource in infra/*.bicep against the published resource schemas: the type data the
Bicep compiler itself checks against (Azure/bicep-types-az `generated/**/types.json`, read in place
from ../shared/azure-types/, whose README explains the format). Run by scripts/check-infra.sh
inside its virtualenv, next to infra_lint.py and checkov.

For each `resource` declaration (existing ones too):
- the resource type exists, at exactly the api-version the template names;
- every property of the body exists in the schema, nested objects and array items included, and
  none of them is read-only;
- literal values have the schema's kind (string, int, bool, object, array) and are allowed by it
  (string enums, integer bounds, string length); a `var` is followed to its value, both branches
  of `a ? b : c` are checked, each argument of union()/concat(); a `param` is checked through its
  decorators (@allowed values, @minValue/@maxValue within the schema's bounds);
- required properties of a literal object are present;
- no value is `null`: a property that does not apply is left out, not set to null.
Values computed at deployment time (function results, references, interpolations) are checked for
their kind only where it is certain.

Usage: infra_schema.py REPO_ROOT [--types DIR]   (exit 0 clean, 1 findings, 2 no type data)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import tree_sitter
import tree_sitter_bicep

# Keys of a resource body that are Bicep syntax, not resource properties
# (https://learn.microsoft.com/azure/azure-resource-manager/bicep/resource-declaration).
BICEP_KEYS = {"parent", "scope", "dependsOn"}

FLAG_REQUIRED, FLAG_READONLY = 1, 2


class Types:
    """Every resource type of every types.json under the type directory."""

    def __init__(self, root: Path):
        self.resources: dict[str, tuple[list, int]] = {}  # lower(type@version) -> (file types, body index)
        self.names: dict[str, str] = {}  # lower(type@version) -> as published
        self.versions: dict[str, set[str]] = {}  # lower(type) -> api-versions
        for path in sorted(root.rglob("types.json")):
            types = json.loads(path.read_text())
            for entry in types:
                if entry.get("$type") != "ResourceType":
                    continue
                name = entry["name"]
                self.resources[name.lower()] = (types, ref_index(entry["body"]))
                self.names[name.lower()] = name
                rtype, _, version = name.partition("@")
                self.versions.setdefault(rtype.lower(), set()).add(version)


def ref_index(ref: dict) -> int:
    return int(ref["$ref"].rsplit("/", 1)[1])


class Schema:
    def __init__(self, root: Path, types: Types):
        self.root = root
        self.types = types
        self.findings: list[str] = []
        self.language = tree_sitter.Language(tree_sitter_bicep.language())
        self.parser = tree_sitter.Parser(self.language)
        self.resources_checked = 0
        self.properties_checked = 0

    # --- file context ----------------------------------------------------------------------------
    def context(self) -> tuple:
        return (self.path, self.text, self.tree, self.vars, self.params)

    def restore(self, ctx: tuple) -> None:
        self.path, self.text, self.tree, self.vars, self.params = ctx

    def collect_callers(self, paths: list[Path]) -> None:
        """Every value passed to a module param: a resource property set from a param is then
        checked against each value its callers pass (in the caller's file)."""
        self.callers: dict[tuple[Path, str], list[tuple[tuple, tree_sitter.Node]]] = {}
        for path in paths:
            self.load(path)
            ctx = self.context()
            for node in self.tree.root_node.children:
                if node.type != "module_declaration":
                    continue
                target = (path.parent / self.src(next(c for c in node.named_children if c.type == "string")).strip("'")).resolve()
                body = body_object(node)
                if body is None:
                    continue
                for prop in body.named_children:
                    if prop.type == "object_property" and self.src(prop.named_children[0]) == "params":
                        for p in prop.named_children[-1].named_children:
                            if p.type == "object_property":
                                key = self.src(p.named_children[0]).strip("'")
                                self.callers.setdefault((target, key), []).append((ctx, p.named_children[-1]))

    def load(self, path: Path) -> None:
        self.path = path
        self.text = path.read_bytes()
        self.tree = self.parser.parse(self.text)
        self.vars: dict[str, tree_sitter.Node] = {}
        self.params: dict[str, tuple[str, dict]] = {}  # name -> (type, decorators)
        decorators: dict = {}
        for node in self.tree.root_node.children:
            if node.type == "decorators":
                decorators = self.decorators(node)
                continue
            ident = next((c for c in node.named_children if c.type == "identifier"), None)
            if node.type == "variable_declaration" and ident is not None:
                self.vars[self.src(ident)] = node.named_children[-1]
            elif node.type == "parameter_declaration" and ident is not None:
                ptype = next((c for c in node.named_children if c.type == "type"), None)
                self.params[self.src(ident)] = (self.src(ptype) if ptype is not None else "", decorators)
            decorators = {}

    def decorators(self, node: tree_sitter.Node) -> dict:
        out = {}
        for dec in node.named_children:
            call = next((c for c in dec.named_children if c.type == "call_expression"), None)
            if call is None:
                continue
            fname = self.src(call.named_children[0])
            args = [a for a in call.named_children[1].named_children]
            if fname == "allowed" and args and args[0].type == "array":
                out["allowed"] = [a for a in args[0].named_children if a.type != "comment"]
            elif fname in ("minValue", "maxValue", "minLength", "maxLength") and args:
                out[fname] = int(self.src(args[0]))
        return out

    def src(self, node: tree_sitter.Node) -> str:
        return self.text[node.start_byte:node.end_byte].decode()

    def error(self, node: tree_sitter.Node, message: str) -> None:
        rel = self.path.relative_to(self.root)
        self.findings.append(f"{rel}:{node.start_point[0] + 1}: {message}")

    # --- resources -------------------------------------------------------------------------------
    def check_file(self, path: Path) -> None:
        self.load(path)
        for node in self.tree.root_node.children:
            if node.type == "resource_declaration":
                self.check_resource(node)
        for node in walk(self.tree.root_node):
            if node.type == "null":
                self.error(node, "null value: leave a property that does not apply out instead of setting it to null")

    def check_resource(self, node: tree_sitter.Node) -> None:
        spec_node = next(c for c in node.named_children if c.type == "string")
        spec = self.src(spec_node).strip("'")
        rtype, _, version = spec.partition("@")
        entry = self.types.resources.get(spec.lower())
        if entry is None:
            known = self.types.versions.get(rtype.lower())
            if known:
                self.error(spec_node, f"{rtype}: api-version {version} does not exist in the published schemas "
                                      f"(known here: {', '.join(sorted(known))})")
            else:
                self.error(spec_node, f"resource type {rtype} does not exist in the published schemas")
            return
        self.resources_checked += 1
        types, body = entry
        published = self.types.names[spec.lower()]
        if published.partition("@")[0] != rtype:
            self.error(spec_node, f"resource type {rtype} is spelt {published.partition('@')[0]} in the schemas")
        obj = body_object(node)
        if obj is None:
            self.error(node, f"{rtype}: cannot find the resource body")
            return
        existing = any(c.type == "existing" for c in node.children)
        self.types_of = types
        self.check_value(obj, body, rtype, partial=existing, top=True)

    # --- values ----------------------------------------------------------------------------------
    def resolve(self, index: int) -> dict:
        return self.types_of[index]

    def check_value(self, node: tree_sitter.Node, index: int, path: str, partial: bool = False,
                    top: bool = False, seen: frozenset = frozenset()) -> None:
        t = self.resolve(index)
        kind = t["$type"]
        ntype = node.type
        if ntype == "parenthesized_expression":
            return self.check_value(node.named_children[0], index, path, partial, top, seen)
        if ntype == "null":
            return  # reported once per file by check_file
        if ntype == "ternary_expression":
            for branch in node.named_children[1:]:
                self.check_value(branch, index, path, partial, top, seen)
            return
        if ntype == "identifier":
            name = self.src(node)
            if name in self.vars and name not in seen:
                return self.check_value(self.vars[name], index, path, partial, top, seen | {name})
            if name in self.params:
                callers = self.callers.get((self.path.resolve(), name), [])
                if not callers:
                    return self.check_param(node, name, index, path)
                here = self.context()
                for ctx, value in callers:
                    self.restore(ctx)
                    self.check_value(value, index, path, partial, top, frozenset())
                self.restore(here)
            return
        if ntype == "call_expression":
            fname = self.src(node.named_children[0])
            args = [a for a in node.named_children[1].named_children if a.type != "comment"]
            if fname in ("union", "shallowMerge") and kind in ("ObjectType", "DiscriminatedObjectType"):
                for arg in args:
                    self.check_value(arg, index, path, True, top, seen)
            elif fname == "concat" and kind == "ArrayType":
                for arg in args:
                    self.check_value(arg, index, path, partial, top, seen)
            return
        if kind == "UnionType":
            return self.check_union(node, t, path)
        if kind == "AnyType":
            return
        if kind == "ObjectType":
            return self.check_object(node, t, path, partial, top, seen)
        if kind == "DiscriminatedObjectType":
            return self.check_discriminated(node, t, path, partial, top, seen)
        if kind == "ArrayType":
            if ntype == "array":
                for item in node.named_children:
                    if item.type != "comment":
                        self.check_value(item, ref_index(t["itemType"]), f"{path}[]", False, False, seen)
            elif ntype == "for_statement":
                self.check_value(node.named_children[-1], ref_index(t["itemType"]), f"{path}[]", False, False, seen)
            elif ntype in ("object", "string", "number", "boolean"):
                self.error(node, f"{path}: expected an array, got {describe(ntype)}")
            return
        if kind in ("StringType", "StringLiteralType"):
            return self.check_string(node, t, path)
        if kind == "IntegerType":
            if ntype == "number":
                self.check_int(node, int(self.src(node)), t, path)
            elif ntype in ("string", "object", "array", "boolean"):
                self.error(node, f"{path}: expected an int, got {describe(ntype)}")
            return
        if kind == "BooleanType":
            if ntype in ("string", "number", "object", "array"):
                self.error(node, f"{path}: expected a bool, got {describe(ntype)}")
            return

    def check_object(self, node, t, path, partial, top, seen, extra: dict | None = None) -> None:
        if node.type in ("string", "number", "boolean", "array"):
            self.error(node, f"{path}: expected an object, got {describe(node.type)}")
            return
        if node.type != "object":
            return
        props = dict(t.get("properties", {}))
        props.update(extra or {})
        additional = t.get("additionalProperties")
        given = set()
        for prop in node.named_children:
            if prop.type != "object_property":
                continue
            key_node = prop.named_children[0]
            key = self.src(key_node).strip("'")
            value = prop.named_children[-1]
            given.add(key)
            if top and key in BICEP_KEYS:
                continue
            self.properties_checked += 1
            where = f"{path}.{key}"
            if key in props:
                spec = props[key]
                if spec.get("flags", 0) & FLAG_READONLY and not (top and key == "name"):
                    self.error(key_node, f"{where} is read-only in the schema: it cannot be set")
                    continue
                self.check_value(value, ref_index(spec["type"]), where, False, False, seen)
            elif additional is not None:
                self.check_value(value, ref_index(additional), where, False, False, seen)
            else:
                if "${" in key:
                    continue
                near = close_matches(key, props)
                hint = f" (did you mean {near}?)" if near else ""
                self.error(key_node, f"{where} is not a property of {t.get('name', path)} in the schema{hint}")
        if not partial:
            for key, spec in props.items():
                if spec.get("flags", 0) & FLAG_REQUIRED and not spec.get("flags", 0) & FLAG_READONLY \
                        and key not in given:
                    self.error(node, f"{path}: required property {key} is missing")

    def check_discriminated(self, node, t, path, partial, top, seen) -> None:
        if node.type != "object":
            return
        disc = t["discriminator"]
        value = None
        for prop in node.named_children:
            if prop.type == "object_property" and self.src(prop.named_children[0]).strip("'") == disc:
                v = prop.named_children[-1]
                if v.type == "string" and not any(c.type == "interpolation" for c in v.named_children):
                    value = self.src(v).strip("'")
        base = dict(t.get("baseProperties", {}))
        if value is None:
            return  # not statically known
        element = t["elements"].get(value)
        if element is None:
            self.error(node, f"{path}: {disc} '{value}' is not one of {', '.join(sorted(t['elements']))}")
            return
        et = self.resolve(ref_index(element))
        self.check_object(node, et, path, partial, top, seen, extra=base)

    def literals(self, t: dict) -> tuple[list[str], bool]:
        """String literals a (union) type allows, and whether any string is allowed."""
        values, open_string = [], False
        stack = [t]
        while stack:
            cur = stack.pop()
            if cur["$type"] == "UnionType":
                stack.extend(self.resolve(ref_index(e)) for e in cur["elements"])
            elif cur["$type"] == "StringLiteralType":
                values.append(cur["value"])
            elif cur["$type"] in ("StringType", "AnyType"):
                open_string = True
        return values, open_string

    def check_union(self, node, t, path) -> None:
        kinds = {self.resolve(ref_index(e))["$type"] for e in t["elements"]}
        if kinds <= {"StringLiteralType", "StringType"}:
            return self.check_string(node, t, path)
        if node.type == "object":
            for e in t["elements"]:
                et = self.resolve(ref_index(e))
                if et["$type"] in ("ObjectType", "DiscriminatedObjectType"):
                    return self.check_value(node, ref_index(e), path)

    def check_string(self, node, t, path) -> None:
        if node.type in ("number", "boolean", "object", "array"):
            self.error(node, f"{path}: expected a string, got {describe(node.type)}")
            return
        if node.type != "string" or any(c.type == "interpolation" for c in node.named_children):
            return
        value = self.src(node)[1:-1]
        self.check_literal_string(node, value, t, path)

    def check_literal_string(self, node, value: str, t: dict, path: str) -> None:
        allowed, open_string = self.literals(t)
        if not open_string and value not in allowed:
            self.error(node, f"{path}: '{value}' is not allowed; the schema allows {', '.join(repr(a) for a in sorted(allowed))}")
            return
        if t["$type"] == "StringType":
            if "minLength" in t and len(value) < t["minLength"]:
                self.error(node, f"{path}: '{value}' is shorter than {t['minLength']} characters")
            if "maxLength" in t and len(value) > t["maxLength"]:
                self.error(node, f"{path}: '{value}' is longer than {t['maxLength']} characters")

    def check_int(self, node, value: int, t: dict, path: str) -> None:
        if "minValue" in t and value < t["minValue"]:
            self.error(node, f"{path}: {value} is below the schema's minimum {t['minValue']}")
        if "maxValue" in t and value > t["maxValue"]:
            self.error(node, f"{path}: {value} is above the schema's maximum {t['maxValue']}")

    def check_param(self, node, name: str, index: int, path: str) -> None:
        ptype, decorators = self.params[name]
        t = self.resolve(index)
        if t["$type"] == "IntegerType":
            if ptype not in ("int", ""):
                self.error(node, f"{path}: expected an int, param {name} is {ptype}")
                return
            low, high = decorators.get("minValue"), decorators.get("maxValue")
            if "minValue" in t and (low is None or low < t["minValue"]):
                self.error(node, f"{path}: param {name} may be below the schema's minimum {t['minValue']} (add @minValue)")
            if "maxValue" in t and (high is None or high > t["maxValue"]):
                self.error(node, f"{path}: param {name} may be above the schema's maximum {t['maxValue']} (add @maxValue)")
            for v in decorators.get("allowed", []):
                if v.type == "number":
                    self.check_int(v, int(self.src(v)), t, path)
        elif t["$type"] in ("StringType", "StringLiteralType", "UnionType"):
            allowed, open_string = self.literals(t)
            if not allowed and not open_string:
                return
            if ptype not in ("string", ""):
                self.error(node, f"{path}: expected a string, param {name} is {ptype}")
                return
            if not open_string and "allowed" not in decorators:
                self.error(node, f"{path}: param {name} may take any string; the schema allows only "
                                 f"{', '.join(repr(a) for a in sorted(allowed))} (add @allowed)")
            for v in decorators.get("allowed", []):
                if v.type == "string":
                    self.check_literal_string(v, self.src(v)[1:-1], t, path)
        elif t["$type"] == "BooleanType" and ptype not in ("bool", ""):
            self.error(node, f"{path}: expected a bool, param {name} is {ptype}")

    def run(self) -> int:
        paths = sorted((self.root / "infra").rglob("*.bicep"))
        self.collect_callers(paths)
        for path in paths:
            self.check_file(path)
        for finding in self.findings:
            print(finding)
        print(f"infra_schema: {len(paths)} Bicep files, {self.resources_checked} resources, "
              f"{self.properties_checked} properties checked against {len(self.types.resources)} "
              f"published resource types, {len(self.findings)} findings")
        return 1 if self.findings else 0


def body_object(node: tree_sitter.Node) -> tree_sitter.Node | None:
    for child in node.named_children:
        if child.type == "object":
            return child
        if child.type in ("if_statement", "for_statement"):
            inner = child.named_children[-1]
            if inner.type == "if_statement":  # [for ...: if (...) {...}]
                inner = inner.named_children[-1]
            return inner if inner.type == "object" else None
    return None


def describe(ntype: str) -> str:
    return {"string": "a string", "number": "an int", "boolean": "a bool", "object": "an object",
            "array": "an array"}.get(ntype, ntype)


def close_matches(key: str, props: dict) -> str:
    import difflib
    near = difflib.get_close_matches(key, list(props), n=1, cutoff=0.75)
    return near[0] if near else ""


def walk(node: tree_sitter.Node):
    yield node
    for child in node.children:
        yield from walk(child)


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    types_dir = root.parent / "shared" / "azure-types"
    if "--types" in argv:
        types_dir = Path(argv[argv.index("--types") + 1]).resolve()
    if not types_dir.is_dir():
        print(f"infra_schema: no type data at {types_dir} (../shared/azure-types/ next to the project)")
        return 2
    return Schema(root, Types(types_dir)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
