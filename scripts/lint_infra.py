#!/usr/bin/env python3
"""Lints the SAM template the way CloudFormation will see it.

cfn-lint checks only property *names* on AWS::Serverless::* resources (a wrong runtime
or a misspelt ReportBatchItemFailures passes), and checkov does not expand SAM. So:

1. translate the SAM template to plain CloudFormation with aws-sam-translator, offline;
2. cfn-lint the SAM template and the translation;
3. checkov (--skip-download) on both.

Usage: lint_infra.py [TEMPLATE] [--out DIR] [--fail-fast]   (default infra/template.yaml)
Exit status 0 when every step is clean, 1 otherwise. Run with the interpreter of the
IaC venv that scripts/test.sh creates (.venv-iac), whose bin/ holds cfn-lint and checkov.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The translator needs a Region even offline; ARNs in the output use its partition.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

BIN = Path(sys.executable).parent
# Stands in for local CodeUri values: SAM CLI uploads the build to S3 and writes such a URI.
PLACEHOLDER_CODE_URI = "s3://herald-lint-placeholder/code.zip"

# cfn-lint's exit status is a bit mask. Errors and warnings fail the lint: the template
# starts clean, and a cfn-lint warning (an unused parameter, an unknown IAM action, a
# deprecated runtime) is a real defect here. Informational findings are printed only.
CFN_LINT_ERROR, CFN_LINT_WARNING, CFN_LINT_INFO = 2, 4, 8
CFN_LINT_FATAL = 1


class OfflinePolicyLoader(ManagedPolicyLoader):
    """The template names no AWS managed policy (its roles are explicit), so none is
    looked up: the translator's own loader would call IAM."""

    def __init__(self):
        pass

    def load(self):
        return {}


def translate(template_path: Path, out_dir: Path) -> Path:
    sam = yaml_parse(template_path.read_text())
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            if not props["CodeUri"].startswith("s3://"):
                props["CodeUri"] = PLACEHOLDER_CODE_URI
    # passthrough_metadata keeps each function's Metadata (its checkov skips) on the
    # AWS::Lambda::Function it becomes, as `sam build` / `sam deploy` do.
    cfn = transform(sam, {}, OfflinePolicyLoader(), passthrough_metadata=True)
    out = out_dir / (template_path.stem + ".cfn.json")
    out.write_text(json.dumps(cfn, indent=2, sort_keys=True))
    return out


def run(step: str, argv: list[str]) -> tuple[int, float]:
    print(f"--> {step}", flush=True)
    started = time.monotonic()
    code = subprocess.run(argv).returncode
    return code, time.monotonic() - started


def cfn_lint(path: Path) -> bool:
    code, took = run(f"cfn-lint {path}", [str(BIN / "cfn-lint"), "--", str(path)])
    failed = code & (CFN_LINT_FATAL | CFN_LINT_ERROR | CFN_LINT_WARNING)
    what = "clean" if code == 0 else f"exit {code}" + (" (errors/warnings)" if failed else " (info only)")
    print(f"    cfn-lint: {what} in {took:.1f}s")
    return not failed


def checkov(path: Path) -> bool:
    argv = [
        str(BIN / "checkov"),
        "--skip-download",  # no network: no Bridgecrew/Prisma policy download
        "--framework",
        "cloudformation",
        "--quiet",  # failed checks only
        "--compact",
        "--file",
        str(path),
    ]
    code, took = run(f"checkov {path}", argv)
    print(f"    checkov: {'clean' if code == 0 else f'exit {code}'} in {took:.1f}s")
    return code == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template", nargs="?", default="infra/template.yaml", type=Path)
    parser.add_argument("--out", type=Path, help="where to write the translated template (default: a temp dir)")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first step that fails")
    args = parser.parse_args()
    if not args.template.is_file():
        print(f"lint_infra: {args.template} not found", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="herald-lint-") as tmp:
        out_dir = args.out or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"--> aws-sam-translator {args.template}", flush=True)
        try:
            translated = translate(args.template, out_dir)
        except Exception as e:  # the translator reports invalid SAM as exceptions
            print(f"    the SAM template does not translate: {e}", file=sys.stderr)
            causes = getattr(e, "causes", None) or []
            for cause in causes:
                print(f"    - {getattr(cause, 'message', cause)}", file=sys.stderr)
            return 1
        print(f"    translated to {translated}")
        steps = [
            ("cfn-lint (SAM)", lambda: cfn_lint(args.template)),
            ("cfn-lint (CloudFormation)", lambda: cfn_lint(translated)),
            ("checkov (SAM)", lambda: checkov(args.template)),
            ("checkov (CloudFormation)", lambda: checkov(translated)),
        ]
        failed = []
        for name, step in steps:
            if not step():
                failed.append(name)
                if args.fail_fast:
                    break
    if failed:
        print(f"lint_infra: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("lint_infra: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
