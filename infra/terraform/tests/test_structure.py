"""Structural checks over every Terraform file in infra/terraform.

Parses each file with python-hcl2 (7.3.1) and checks what `terraform
validate` cannot check offline, and what checkov does not check at all:

- every file (.tf, .tfvars, .tftest.hcl, .tfmock.hcl) parses;
- a module call passes only variables the module declares, sets every
  variable without a default, and uses a local source;
- every variable has a description and a type, every output a description;
- every resource of a type that takes tags sets `tags` (default_tags are not
  enough: they carry no Name); every resource type is classified, so a new
  one cannot slip past this rule;
- modules have main/variables/outputs/versions.tf and a README naming every
  input and output; provider versions are pinned;
- environment stacks keep state in S3 with locking and set default_tags.

`TreeChecks` runs them over the real tree (expecting no finding);
`RulesCatchBrokenFixtures` runs them over tests/fixtures/bad, which breaks
every rule on purpose, so a rule that stops working fails the suite.

Run: PYTHONPATH=<python-hcl2 7.3.1> python -m pytest infra/terraform/tests
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unittest
from dataclasses import dataclass
from pathlib import Path

import hcl2
import hcl2.version

TF_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Resource types that accept a `tags` argument. Keep both sets in sync with
# the resources the modules use: an unknown type is a finding of its own.
TAGGABLE = {
    "aws_acm_certificate",
    "aws_autoscaling_group",
    "aws_backup_plan",
    "aws_backup_vault",
    "aws_cloudtrail",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_metric_alarm",
    "aws_codebuild_project",
    "aws_cognito_user_pool",
    "aws_db_subnet_group",
    "aws_default_security_group",
    "aws_ecr_repository",
    "aws_eip",
    "aws_eks_access_entry",
    "aws_eks_addon",
    "aws_eks_cluster",
    "aws_eks_node_group",
    "aws_eks_pod_identity_association",
    "aws_elasticache_parameter_group",
    "aws_elasticache_replication_group",
    "aws_elasticache_subnet_group",
    "aws_flow_log",
    "aws_guardduty_detector",
    "aws_iam_openid_connect_provider",
    "aws_iam_policy",
    "aws_iam_role",
    "aws_internet_gateway",
    "aws_kms_key",
    "aws_launch_template",
    "aws_nat_gateway",
    "aws_network_acl",
    "aws_opensearch_domain",
    "aws_rds_cluster",
    "aws_rds_cluster_instance",
    "aws_rds_cluster_parameter_group",
    "aws_route_table",
    "aws_s3_bucket",
    "aws_secretsmanager_secret",
    "aws_security_group",
    "aws_sns_topic",
    "aws_ssm_parameter",
    "aws_subnet",
    "aws_vpc",
    "aws_vpc_endpoint",
    "aws_vpc_security_group_egress_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_wafv2_web_acl",
}
UNTAGGABLE = {
    "aws_acm_certificate_validation",
    "aws_autoscaling_group_tag",
    "aws_backup_selection",
    "aws_cloudwatch_log_metric_filter",
    "aws_cloudwatch_log_resource_policy",
    "aws_codebuild_webhook",
    "aws_cognito_user_pool_client",
    "aws_cognito_user_pool_domain",
    "aws_config_configuration_recorder",
    "aws_config_configuration_recorder_status",
    "aws_config_delivery_channel",
    "aws_ecr_lifecycle_policy",
    "aws_eks_access_policy_association",
    "aws_guardduty_detector_feature",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_kms_alias",
    "aws_route",
    "aws_route53_record",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_secretsmanager_secret_rotation",
    "aws_secretsmanager_secret_version",
    "aws_securityhub_account",
    "aws_securityhub_standards_subscription",
    "aws_sns_topic_policy",
    "aws_sns_topic_subscription",
    "aws_wafv2_web_acl_logging_configuration",
    "helm_release",
}

MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
SKIPPED_DIRS = {".terraform", "fixtures"}


@dataclass(frozen=True, order=True)
class Finding:
    """One broken rule: which rule, in which file, about what."""

    rule: str
    path: str
    subject: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.path}: {self.subject}"


@dataclass
class Module:
    """The parsed .tf files of one directory (one Terraform module)."""

    path: Path
    files: dict[Path, dict]

    def blocks(self, kind: str):
        """Yield (file, name, body) for every `kind "name" {}` block."""
        for file, doc in self.files.items():
            for entry in doc.get(kind, []):
                for name, body in entry.items():
                    yield file, name, body

    def resources(self):
        """Yield (file, type, name, body) for every resource block."""
        for file, doc in self.files.items():
            for entry in doc.get("resource", []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        yield file, rtype, name, body

    def variables(self) -> dict[str, dict]:
        return {name: body for _, name, body in self.blocks("variable")}

    def outputs(self) -> dict[str, dict]:
        return {name: body for _, name, body in self.blocks("output")}


class Tree:
    """Every Terraform file below a root, parsed once."""

    def __init__(self, root: Path):
        self.root = root
        self.findings: list[Finding] = []
        self.modules: dict[Path, Module] = {}
        for path in sorted(self._files("*.tf")):
            doc = self._parse(path)
            if doc is not None:
                self.modules.setdefault(path.parent, Module(path.parent, {})).files[path] = doc
        # Test, mock data and variable files are not part of a module, but
        # must parse.
        for pattern in ("*.tftest.hcl", "*.tfmock.hcl", "*.tfvars"):
            for path in self._files(pattern):
                self._parse(path)

    def _files(self, pattern: str):
        for path in self.root.rglob(pattern):
            if not SKIPPED_DIRS.intersection(path.relative_to(self.root).parts):
                yield path

    def _parse(self, path: Path) -> dict | None:
        try:
            with path.open(encoding="utf-8") as handle:
                return hcl2.load(handle)
        except Exception as error:  # lark raises several unrelated types
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.add("parse", path, first_line)
            return None

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def add(self, rule: str, path: Path, subject: str) -> None:
        self.findings.append(Finding(rule, self.rel(path), subject))

    def kind(self, module: Module) -> str:
        """`module` for modules/<name>, `env` for envs/..., else `other`."""
        parts = module.path.relative_to(self.root).parts
        if len(parts) == 2 and parts[0] == "modules":
            return "module"
        if parts and parts[0] == "envs":
            return "env"
        return "other"


#### Rules


def check_module_calls(tree: Tree) -> None:
    for module in tree.modules.values():
        for file, name, body in module.blocks("module"):
            source = body.get("source", "")
            if not source.startswith(("./", "../")):
                tree.add("module-source", file, f"module.{name}: source {source!r} is not a local path")
                continue
            target = tree.modules.get((module.path / source).resolve())
            if target is None:
                tree.add("module-source", file, f"module.{name}: no Terraform files in {source}")
                continue
            declared = target.variables()
            passed = set(body) - MODULE_META_ARGUMENTS
            for arg in sorted(passed - set(declared)):
                tree.add("module-undeclared-input", file, f"module.{name} passes {arg}, which {source} does not declare")
            required = {var for var, spec in declared.items() if "default" not in spec}
            for arg in sorted(required - passed):
                tree.add("module-missing-input", file, f"module.{name} omits required variable {arg}")


def check_variables_and_outputs(tree: Tree) -> None:
    for module in tree.modules.values():
        for file, name, body in module.blocks("variable"):
            if not str(body.get("description", "")).strip():
                tree.add("variable-description", file, f"variable.{name}")
            if "type" not in body:
                tree.add("variable-type", file, f"variable.{name}")
        for file, name, body in module.blocks("output"):
            if not str(body.get("description", "")).strip():
                tree.add("output-description", file, f"output.{name}")


def check_tags(tree: Tree) -> None:
    for module in tree.modules.values():
        for file, rtype, name, body in module.resources():
            if rtype in TAGGABLE:
                if "tags" not in body:
                    tree.add("resource-tags", file, f"{rtype}.{name} takes tags but sets none")
            elif rtype not in UNTAGGABLE:
                tree.add("resource-unclassified", file, f"{rtype}.{name}: add {rtype} to TAGGABLE or UNTAGGABLE")


def check_layout(tree: Tree) -> None:
    for module in tree.modules.values():
        if tree.kind(module) != "module":
            continue
        for required in MODULE_FILES:
            if not (module.path / required).is_file():
                tree.add("module-layout", module.path / required, "missing")
        readme = module.path / "README.md"
        text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        for kind, names in (("input", module.variables()), ("output", module.outputs())):
            for name in sorted(names):
                if f"`{name}`" not in text:
                    tree.add("readme-inputs-outputs", readme, f"{kind} `{name}` is not documented")


def check_versions(tree: Tree) -> None:
    for module in tree.modules.values():
        if tree.kind(module) == "other":
            continue
        blocks = [body for _, doc in module.files.items() for body in doc.get("terraform", [])]
        if not any("required_version" in b for b in blocks):
            tree.add("provider-pinned", module.path, "terraform.required_version is not set")
        for block in blocks:
            for providers in block.get("required_providers", []):
                for provider, spec in providers.items():
                    if not isinstance(spec, dict) or not re.search(r"[~<=]", str(spec.get("version", ""))):
                        tree.add("provider-pinned", module.path, f"provider {provider} has no bounded version constraint")


def check_envs(tree: Tree) -> None:
    for module in tree.modules.values():
        if tree.kind(module) != "env":
            continue
        backends = [
            (kind, spec)
            for _, doc in module.files.items()
            for block in doc.get("terraform", [])
            for backend in block.get("backend", [])
            for kind, spec in backend.items()
        ]
        if not any(kind == "s3" and (spec.get("use_lockfile") is True or "dynamodb_table" in spec) and spec.get("encrypt") is True for kind, spec in backends):
            tree.add("env-remote-state", module.path, "needs an encrypted s3 backend with locking (use_lockfile)")
        aws = [body for _, name, body in module.blocks("provider") if name == "aws"]
        if not aws or not all(body.get("default_tags") for body in aws):
            tree.add("env-default-tags", module.path, "provider aws must set default_tags")


RULES = (check_module_calls, check_variables_and_outputs, check_tags, check_layout, check_versions, check_envs)


def check_tree(root: Path) -> list[Finding]:
    """Every finding of every rule below root (tests/fixtures excluded)."""
    tree = Tree(root)
    for rule in RULES:
        rule(tree)
    return sorted(set(tree.findings))


#### Tests


class ParserVersion(unittest.TestCase):
    def test_python_hcl2_is_the_pinned_version(self):
        # checkov installs its own fork into the same `hcl2` package folder;
        # the rules are written against python-hcl2 7.3.1's output shape.
        self.assertEqual(hcl2.version.version, "7.3.1", f"hcl2 loaded from {hcl2.__file__}")


class TreeChecks(unittest.TestCase):
    def test_the_terraform_tree_breaks_no_structural_rule(self):
        findings = check_tree(TF_ROOT)
        self.assertEqual(findings, [], "\n" + "\n".join(map(str, findings)))

    def test_every_module_and_environment_is_found(self):
        tree = Tree(TF_ROOT)
        found = {tree.rel(path) for path in tree.modules}
        expected = {f"modules/{m}" for m in ("network", "eks", "aurora", "security", "addons", "platform")}
        expected |= {f"envs/{e}{layer}" for e in ("staging", "production") for layer in ("", "/addons")}
        self.assertTrue(expected <= found, f"missing: {sorted(expected - found)}")

    def test_every_module_has_terraform_tests(self):
        stacks = [f"modules/{m}" for m in ("network", "eks", "aurora", "security", "addons", "platform")]
        stacks += ["envs/staging", "envs/production"]
        for stack in stacks:
            tests = list((TF_ROOT / stack / "tests").glob("*.tftest.hcl"))
            self.assertTrue(tests, f"{stack} has no tests/*.tftest.hcl")


class RulesCatchBrokenFixtures(unittest.TestCase):
    """tests/fixtures/bad breaks each rule once; every break must be caught."""

    @classmethod
    def setUpClass(cls):
        cls.findings = check_tree(FIXTURES / "bad")

    def assertFinding(self, rule: str, path: str, subject_part: str):
        matches = [f for f in self.findings if f.rule == rule and f.path == path and subject_part in f.subject]
        self.assertTrue(matches, f"expected [{rule}] {path}: ...{subject_part}...; got:\n" + "\n".join(map(str, self.findings)))

    def test_module_call_passing_an_undeclared_variable_is_caught(self):
        self.assertFinding("module-undeclared-input", "envs/broken/main.tf", "undeclared_input")

    def test_module_call_omitting_a_required_variable_is_caught(self):
        self.assertFinding("module-missing-input", "envs/broken/main.tf", "required_input")

    def test_optional_and_declared_variables_are_not_reported(self):
        subjects = " ".join(f.subject for f in self.findings if f.rule.startswith("module-"))
        self.assertNotIn("optional_input", subjects)

    def test_registry_module_source_is_caught(self):
        self.assertFinding("module-source", "envs/broken/main.tf", "terraform-aws-modules/vpc/aws")

    def test_variable_without_description_is_caught(self):
        self.assertFinding("variable-description", "envs/broken/main.tf", "variable.no_description")

    def test_variable_without_type_is_caught(self):
        self.assertFinding("variable-type", "envs/broken/main.tf", "variable.no_type")

    def test_output_without_description_is_caught(self):
        self.assertFinding("output-description", "envs/broken/main.tf", "output.no_description")

    def test_taggable_resource_without_tags_is_caught(self):
        self.assertFinding("resource-tags", "envs/broken/main.tf", "aws_s3_bucket.untagged")

    def test_tagged_and_untaggable_resources_are_not_reported(self):
        subjects = " ".join(f.subject for f in self.findings)
        self.assertNotIn("aws_s3_bucket.tagged", subjects)
        self.assertNotIn("aws_kms_alias.untaggable", subjects)

    def test_unclassified_resource_type_is_caught(self):
        self.assertFinding("resource-unclassified", "envs/broken/main.tf", "aws_made_up_thing.unclassified")

    def test_module_without_outputs_file_is_caught(self):
        self.assertFinding("module-layout", "modules/child/outputs.tf", "missing")

    def test_readme_missing_an_input_or_output_is_caught(self):
        self.assertFinding("readme-inputs-outputs", "modules/child/README.md", "input `optional_input`")
        self.assertFinding("readme-inputs-outputs", "modules/child/README.md", "output `child_output`")

    def test_unpinned_provider_is_caught(self):
        self.assertFinding("provider-pinned", "modules/child", "provider aws")

    def test_env_without_locked_remote_state_is_caught(self):
        self.assertFinding("env-remote-state", "envs/broken", "s3 backend")

    def test_env_without_default_tags_is_caught(self):
        self.assertFinding("env-default-tags", "envs/broken", "default_tags")

    def test_unparseable_file_is_caught(self):
        # Kept as .tf.txt in the fixtures so terraform fmt does not choke on it.
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(FIXTURES / "unparseable.tf.txt", Path(tmp) / "main.tf")
            findings = check_tree(Path(tmp))
        self.assertEqual([f.rule for f in findings], ["parse"], findings)


if __name__ == "__main__":
    unittest.main()
