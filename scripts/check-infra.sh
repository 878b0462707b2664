#!/usr/bin/env bash
# Static checks of the Bicep deployment in infra/, run by the test suite (tests/infra.rs).
#
# No Bicep compiler can be installed from the package registries this project uses (the Bicep
# CLI is a .NET program published on GitHub and NuGet only; the npm and PyPI wrappers download
# it at run time), so the checks are:
#   1. scripts/infra_lint.py: both pycep (checkov's parser) and tree-sitter-bicep parse every
#      file; undeclared or unused symbols; module params and outputs line up; no preview API
#      versions; every setting the functions and docs/SETTINGS.md name is set; no keys or SAS.
#   2. scripts/infra_schema.py: every resource type, api-version and property (nested ones, their
#      kinds and allowed values) exists in the published resource schemas, the type data the
#      Bicep compiler uses (../shared/azure-types/, read in place); no property is set to null.
#   3. checkov (Bicep framework): fails on any failed check that is not skipped inline with a
#      reason (`// checkov:skip=CKV_...:why`, next to the resource), and on any file it could not
#      parse (checkov itself only counts those).
#
# Tools are pinned in scripts/infra-tools/requirements.txt and installed once into .venv-infra/
# (git-ignored); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-infra
# shellcheck source=lib/venv.sh
source scripts/lib/venv.sh
ensure_venv "$VENV" scripts/infra-tools/requirements.txt

# `check-infra.sh --schema ROOT`: only the schema check, of the infra/ under ROOT (tests/infra.rs
# runs it on mutated copies of the template).
if [[ "${1:-}" == "--schema" ]]; then
  exec "$VENV/bin/python" scripts/infra_schema.py "$2" --types "$PWD/../shared/azure-types"
fi

echo "check-infra: infra_lint"
"$VENV/bin/python" scripts/infra_lint.py "$PWD"

echo "check-infra: infra_schema"
"$VENV/bin/python" scripts/infra_schema.py "$PWD"

echo "check-infra: checkov $("$VENV/bin/checkov" --version) (framework bicep)"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
# --skip-download: no calls to the Prisma Cloud API (guidelines, severities); exit status is
# judged below from the JSON report, so that parse errors count as failures too.
# modules/guard.bicep uses fail(), which pycep's grammar lacks; it declares no resources (infra_lint
# fails any file beyond pycep that does), so leaving it out of the scan loses no check.
"$VENV/bin/checkov" --directory infra --framework bicep --skip-download --compact \
  --skip-path 'infra/modules/guard\.bicep' --output json >"$report" || true

"$VENV/bin/python" - "$report" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
failed = skipped = passed = parse_errors = 0
for report in reports:
    if "results" not in report:  # an empty scan has no results section
        continue
    results = report["results"]
    summary = report.get("summary", {})
    parse_errors += summary.get("parsing_errors", 0)
    passed += summary.get("passed", 0)
    for check in results.get("skipped_checks", []):
        skipped += 1
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        print(f"  skipped {check['check_id']} {check['resource']}: {reason}")
    for check in results.get("failed_checks", []):
        failed += 1
        print(f"  FAILED  {check['check_id']} {check['resource']} ({check['file_path']}:"
              f"{check['file_line_range'][0]}): {check['check_name']}")
print(f"checkov: {passed} passed, {failed} failed, {skipped} skipped with a reason, {parse_errors} parse errors")
if passed == 0:
    print("checkov ran no check: is infra/ empty?")
    sys.exit(1)
sys.exit(1 if failed or parse_errors else 0)
EOF
echo "check-infra: ok"
