#!/usr/bin/env python3
"""Static checks of infra/*.bicep that need no Bicep compiler (none is installable from the package
registries this project uses). Run by scripts/check-infra.sh inside its virtualenv, before checkov.

1. Every file parses with two independent Bicep grammars: pycep (the parser checkov uses; checkov
   silently skips a file it cannot parse) and tree-sitter-bicep.
2. Symbols: every identifier a file uses is declared in it (param, var, resource, module, loop or
   lambda variable) or is a built-in; every param and var is used (Bicep's no-unused-params and
   no-unused-vars linter rules).
3. Modules: the path exists; every param passed is declared by the module; every module param
   without a default is passed; every `<module>.outputs.<name>` exists.
4. Resources: no preview API versions.
5. App settings: every %SETTING% that functions/*/function.json expands, and every setting in the
   docs/SETTINGS.md table, is set by
   the template; host storage is identity-based; nothing key- or SAS-based appears.
6. Every `checkov:skip=` carries a reason.

Usage: infra_lint.py [REPO_ROOT]   (exit 0 clean, 1 findings)
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter
import tree_sitter_bicep
from pycep import BicepParser

# Functions and namespaces Bicep provides (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions).
BUILTINS = {
    "az", "sys",
    # any, array, date, deployment, file, lambda, logical, numeric, object, resource, scope, string
    "any", "array", "concat", "contains", "empty", "first", "flatten", "indexOf", "intersection",
    "items", "join", "last", "lastIndexOf", "length", "max", "min", "range", "skip", "take", "union",
    "dateTimeAdd", "dateTimeFromEpoch", "dateTimeToEpoch", "utcNow", "deployer", "deployment",
    "environment", "loadFileAsBase64", "loadJsonContent", "loadYamlContent", "loadTextContent",
    "filter", "groupBy", "map", "mapValues", "reduce", "shallowMerge", "sort", "toObject", "bool",
    "int", "json", "string", "float", "objectKeys", "extensionResourceId", "getSecret", "list",
    "listKeys", "listAccountSas", "managementGroupResourceId", "pickZones", "providers", "reference",
    "resourceId", "subscriptionResourceId", "tenantResourceId", "managementGroup", "resourceGroup",
    "subscription", "tenant", "base64", "base64ToJson", "base64ToString", "dataUri", "dataUriToString",
    "endsWith", "format", "guid", "lastIndexOf", "newGuid", "padLeft", "replace", "split", "startsWith",
    "substring", "toLower", "toUpper", "trim", "uniqueString", "uri", "uriComponent",
    "uriComponentToString", "parseCidr", "cidrSubnet", "cidrHost", "fail", "tryGet", "buildUri",
    "parseUri",
    # decorators
    "description", "allowed", "minLength", "maxLength", "minValue", "maxValue", "metadata", "secure",
    "batchSize", "export", "sealed", "discriminator", "onlyIfNotExists",
}

# Anything that would mean a key, a SAS or a connection string with a secret.
FORBIDDEN = [
    (re.compile(r"\blistKeys\s*\("), "listKeys(): no account keys may be read"),
    (re.compile(r"\blistAccountSas\s*\(|\blistServiceSas\s*\("), "SAS generation: no SAS tokens"),
    (re.compile(r"AccountKey=", re.I), "a connection string with an account key"),
    (re.compile(r"SharedAccessSignature", re.I), "a SAS"),
    (re.compile(r"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"), "an Azure Files content share (needs a key)"),
    (re.compile(r"APPINSIGHTS_INSTRUMENTATIONKEY"), "the instrumentation-key setting (use the connection string with Entra ID auth)"),
    (re.compile(r"name:\s*'AzureWebJobsStorage'"), "a connection-string AzureWebJobsStorage (use the identity-based __*ServiceUri form)"),
    # Microsoft Learn, functions-app-settings#azurewebjobsstorage__accountname: "For sovereign
    # clouds or when using a custom DNS, you must instead use the service-specific
    # AzureWebJobsStorage__*ServiceUri settings", and the template offers cloud=usgov|china.
    (re.compile(r"name:\s*'AzureWebJobsStorage__accountName'"), "AzureWebJobsStorage__accountName is not valid in sovereign clouds or with custom DNS (use __blobServiceUri, __queueServiceUri, __tableServiceUri)"),
]

# Settings docs/SETTINGS.md documents that a Function App must not get from the template.
NOT_FOR_AZURE = {
    "TI_RATE_WINDOW_SECS": "only a simulator with a scaled-down minute needs a window other than 60 s",
    "TI_DRY_RUN_DIR": "a local folder for the CLI's dry run; an app instance's disk is not kept",
    "TI_TEST_ABORT_AT": "a test hook for the kill tests; it must never be set in Azure",
    "TI_CHECKPOINT_DIR": "CLI only: `ti-ingest upload` keeps its checkpoints there; the app keeps its runs in storage",
}

REQUIRED_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri": None,
    "AzureWebJobsStorage__queueServiceUri": None,
    "AzureWebJobsStorage__tableServiceUri": None,
    "AzureWebJobsStorage__credential": "'managedidentity'",
    "AzureWebJobsStorage__clientId": None,
    "APPLICATIONINSIGHTS_CONNECTION_STRING": None,
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": None,
}


@dataclass
class BicepFile:
    path: Path
    text: str
    tree: tree_sitter.Tree
    params: dict[str, bool] = field(default_factory=dict)  # name -> has default
    outputs: set[str] = field(default_factory=set)
    declared: dict[str, str] = field(default_factory=dict)  # name -> kind
    local_names: set[str] = field(default_factory=set)  # loop and lambda variables

    def line(self, node: tree_sitter.Node) -> int:
        return node.start_point[0] + 1

    def source(self, node: tree_sitter.Node) -> str:
        return self.text.encode()[node.start_byte:node.end_byte].decode()


class Lint:
    def __init__(self, root: Path):
        self.root = root
        self.findings: list[str] = []
        self.language = tree_sitter.Language(tree_sitter_bicep.language())
        self.ts = tree_sitter.Parser(self.language)
        self.pycep = BicepParser()
        self.files: dict[Path, BicepFile] = {}

    def error(self, path: Path, line: int, message: str) -> None:
        self.findings.append(f"{path.relative_to(self.root)}:{line}: {message}")

    # 1. parsing ---------------------------------------------------------------------------------
    def parse(self, path: Path) -> BicepFile | None:
        text = path.read_text()
        ok = True
        tree = self.ts.parse(text.encode())
        if tree.root_node.has_error:
            bad = first_error(tree.root_node)
            self.error(path, bad.start_point[0] + 1 if bad else 1,
                       "tree-sitter-bicep reports a syntax error here")
            ok = False
        try:
            self.pycep.parse(text=text)
        except Exception as e:  # pycep raises lark errors of several kinds
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            match = re.search(r"line (\d+)", str(e))
            resources = [n for n in tree.root_node.children if n.type == "resource_declaration"]
            if ok and not resources:
                # pycep's grammar lacks some newer functions (fail()); a file without resources
                # gives checkov nothing to check, so only such a file may be beyond pycep
                # (check-infra.sh keeps it out of checkov's scan).
                print(f"infra_lint: note: {path.relative_to(self.root)} is beyond pycep ({first}); "
                      "it declares no resources, so checkov loses nothing")
            else:
                self.error(path, int(match.group(1)) if match else 1,
                           f"pycep (checkov's parser) cannot parse this file, so checkov would skip it: {first}")
                ok = False
        return BicepFile(path, text, tree) if ok else None

    # 2. symbols ---------------------------------------------------------------------------------
    def collect(self, f: BicepFile) -> None:
        for node in f.tree.root_node.children:
            kind = node.type
            name = first_named(node, "identifier")
            if kind == "parameter_declaration" and name is not None:
                f.params[f.source(name)] = any(c.type == "=" for c in node.children)
                f.declared[f.source(name)] = "param"
            elif kind == "variable_declaration" and name is not None:
                f.declared[f.source(name)] = "var"
            elif kind in ("resource_declaration", "module_declaration") and name is not None:
                f.declared[f.source(name)] = "resource" if kind == "resource_declaration" else "module"
            elif kind == "output_declaration" and name is not None:
                f.outputs.add(f.source(name))
            elif kind in ("type_declaration", "user_defined_function"):
                if name is not None:
                    f.declared[f.source(name)] = "type"
        for node in walk(f.tree.root_node):
            if node.type in ("loop_variable", "loop_enumerator"):
                f.local_names.add(f.source(node))
            elif node.type == "for_statement":
                initializer = node.child_by_field_name("initializer")
                if initializer is not None and initializer.type == "identifier":
                    f.local_names.add(f.source(initializer))
            elif node.type == "lambda_expression":
                for child in node.named_children[:-1]:
                    if child.type == "identifier":
                        f.local_names.add(f.source(child))
                    for sub in walk(child):
                        if sub.type == "identifier":
                            f.local_names.add(f.source(sub))

    def references(self, f: BicepFile) -> list[tree_sitter.Node]:
        refs = []
        for node in walk(f.tree.root_node):
            if node.type != "identifier" or node.parent is None:
                continue
            parent = node.parent
            index = list(parent.children).index(node)
            field_name = parent.field_name_for_child(index)
            if parent.type in ("parameter_declaration", "variable_declaration", "resource_declaration",
                               "module_declaration", "output_declaration", "type_declaration",
                               "user_defined_function") and parent.named_children and parent.named_children[0] == node:
                continue  # the declared name
            if parent.type == "object_property" and parent.named_children[0] == node:
                continue  # a property key
            if parent.type == "call_expression" and field_name == "function":
                continue  # a function name (built-in or namespace)
            if parent.type == "lambda_expression" and node != parent.named_children[-1]:
                continue  # a lambda parameter
            if parent.type == "for_statement" and field_name == "initializer":
                continue  # a loop variable
            refs.append(node)
        return refs

    def check_symbols(self, f: BicepFile) -> None:
        used: set[str] = set()
        for ref in self.references(f):
            name = f.source(ref)
            used.add(name)
            if name in f.declared or name in f.local_names or name in BUILTINS:
                continue
            self.error(f.path, f.line(ref), f"'{name}' is not declared in this file")
        for name, kind in f.declared.items():
            if kind in ("param", "var") and name not in used:
                line = next((i + 1 for i, l in enumerate(f.text.splitlines())
                             if re.match(rf"\s*{kind}\s+{re.escape(name)}\b", l)), 1)
                self.error(f.path, line, f"{kind} '{name}' is declared but never used")

    # 3. modules ---------------------------------------------------------------------------------
    def check_modules(self, f: BicepFile) -> None:
        modules: dict[str, BicepFile] = {}
        for node in f.tree.root_node.children:
            if node.type != "module_declaration":
                continue
            name = f.source(first_named(node, "identifier"))
            path_node = first_named(node, "string")
            rel = f.source(path_node).strip("'")
            target = (f.path.parent / rel).resolve()
            module = self.files.get(target)
            if module is None:
                self.error(f.path, f.line(node), f"module '{name}': {rel} does not exist or did not parse")
                continue
            modules[name] = module
            body = next((c for c in walk(node) if c.type == "object" and c.parent == node), None)
            if body is None:
                body = next((c for c in node.named_children if c.type in ("object", "if_statement")), None)
                if body is not None and body.type == "if_statement":
                    body = next((c for c in walk(body) if c.type == "object"), None)
            passed: set[str] = set()
            if body is not None:
                for prop in body.named_children:
                    if prop.type == "object_property" and f.source(prop.named_children[0]) == "params":
                        value = prop.named_children[-1]
                        for p in value.named_children:
                            if p.type == "object_property":
                                key = f.source(p.named_children[0]).strip("'")
                                passed.add(key)
                                if key not in module.params:
                                    self.error(f.path, f.line(p), f"module '{name}' has no param '{key}'")
            for param, has_default in module.params.items():
                if not has_default and param not in passed:
                    self.error(f.path, f.line(node), f"module '{name}': required param '{param}' is not passed")
        for node in walk(f.tree.root_node):
            if node.type != "member_expression":
                continue
            obj = node.child_by_field_name("object")
            prop = node.child_by_field_name("property")
            if obj is None or prop is None or obj.type != "member_expression":
                continue
            inner_obj = obj.child_by_field_name("object")
            inner_prop = obj.child_by_field_name("property")
            if inner_obj is None or inner_prop is None or inner_obj.type != "identifier":
                continue
            module = modules.get(f.source(inner_obj))
            if module is not None and f.source(inner_prop) == "outputs" and f.source(prop) not in module.outputs:
                self.error(f.path, f.line(node),
                           f"module '{f.source(inner_obj)}' has no output '{f.source(prop)}'")

    # 4. resources -------------------------------------------------------------------------------
    def check_api_versions(self, f: BicepFile) -> None:
        for node in walk(f.tree.root_node):
            if node.type == "resource_declaration":
                type_node = first_named(node, "string")
                spec = f.source(type_node).strip("'")
                if "@" not in spec:
                    self.error(f.path, f.line(node), f"resource type without an API version: {spec}")
                elif "preview" in spec.split("@", 1)[1].lower():
                    self.error(f.path, f.line(node), f"preview API version: {spec}")

    # 5. app settings ----------------------------------------------------------------------------
    def check_settings(self) -> None:
        main = self.root / "infra" / "main.bicep"
        texts = {p: p.read_text() for p in (self.root / "infra").rglob("*.bicep")}
        for path, text in texts.items():
            for i, line in enumerate(text.splitlines(), 1):
                if line.lstrip().startswith("//"):
                    continue
                for pattern, why in FORBIDDEN:
                    if pattern.search(line):
                        self.error(path, i, f"forbidden: {why}")
        settings: dict[str, tuple[Path, str]] = {}
        setting = re.compile(r"name:\s*'([A-Za-z0-9_]+)'\s*\n\s*value:\s*(.+)")
        for path, text in texts.items():
            for m in setting.finditer(text):
                settings[m.group(1)] = (path, m.group(2).strip())
        for name, value in REQUIRED_SETTINGS.items():
            if name not in settings:
                self.error(main, 1, f"app setting {name} is not set")
            elif value is not None and settings[name][1] != value:
                self.error(settings[name][0], 1, f"app setting {name} must be {value}")
        storage = texts.get(self.root / "infra" / "modules" / "storage.bicep", "")
        for required in ("allowSharedKeyAccess: false", "allowBlobPublicAccess: false", "minimumTlsVersion: 'TLS1_2'"):
            if required not in storage:
                self.error(self.root / "infra" / "modules" / "storage.bicep", 1, f"storage account lacks `{required}`")

        wanted: dict[str, str] = {}
        for fj in sorted((self.root / "functions").glob("*/function.json")):
            for var in re.findall(r"%([A-Za-z0-9_]+)%", fj.read_text()):
                wanted.setdefault(var, str(fj.relative_to(self.root)))
        settings_doc = self.root / "docs" / "SETTINGS.md"
        for var in settings_in_section(settings_doc.read_text(), r"^# Settings\b"):
            wanted.setdefault(var, "docs/SETTINGS.md")
        for var, source in sorted(wanted.items()):
            if var not in settings and var not in NOT_FOR_AZURE:
                self.error(main, 1, f"app setting {var} (named in {source}) is not set by the template")

    # 6. checkov skips ---------------------------------------------------------------------------
    def check_skips(self, f: BicepFile) -> None:
        for i, line in enumerate(f.text.splitlines(), 1):
            m = re.search(r"checkov:skip=([A-Z0-9_,]+)(:(.*))?", line)
            if m and len((m.group(3) or "").strip()) < 20:
                self.error(f.path, i, f"checkov:skip={m.group(1)} needs a reason (`checkov:skip=ID:why`)")

    def run(self) -> int:
        paths = sorted((self.root / "infra").rglob("*.bicep"))
        if not paths:
            self.error(self.root, 1, "no infra/*.bicep files")
        for path in paths:
            parsed = self.parse(path)
            if parsed is not None:
                self.collect(parsed)
                self.files[path.resolve()] = parsed
        for f in self.files.values():
            self.check_symbols(f)
            self.check_modules(f)
            self.check_api_versions(f)
            self.check_skips(f)
        self.check_settings()
        for finding in self.findings:
            print(finding)
        print(f"infra_lint: {len(paths)} Bicep files, {len(self.findings)} findings")
        return 1 if self.findings else 0


def settings_in_section(markdown: str, heading: str) -> set[str]:
    lines = markdown.splitlines()
    names: set[str] = set()
    inside = False
    for line in lines:
        if re.match(heading, line):
            inside = True
            continue
        if inside and re.match(r"^#{1,2} ", line):
            break
        if inside and line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*_[A-Z0-9_]+)`", first_cell))
    return names


def walk(node: tree_sitter.Node):
    yield node
    for child in node.children:
        yield from walk(child)


def first_named(node: tree_sitter.Node, kind: str) -> tree_sitter.Node | None:
    return next((c for c in node.named_children if c.type == kind), None)


def first_error(node: tree_sitter.Node) -> tree_sitter.Node | None:
    for n in walk(node):
        if n.type == "ERROR" or n.is_missing:
            return n
    return None


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    sys.exit(Lint(root).run())
