"""Apply, assert, destroy: the AWS-only modules against moto's server.

Terratest's role, played with the tools this machine has: moto's server
(PyPI) on loopback, the mirrored AWS provider, boto3 for the assertions.
Run by scripts/test-infra.sh; exits non-zero on the first failed step.

    python run.py            # needs terraform, moto[server], boto3
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
TF_ROOT = HERE.parents[1]
PLUGINS = Path("/opt/tf-plugins")
REGION = "eu-west-1"
NOT_APPLIED = {
    "modules/eks, modules/platform": "EKS add-ons, access entries and Pod Identity associations are not served by moto",
    "modules/aurora": "Aurora Serverless v2 scaling, managed master passwords and AWS Backup plans are incomplete in moto",
    "modules/monitoring": "OpenSearch domains with VPC options and fine-grained access control are not served",
    "modules/ci": "CodeBuild webhooks (the GitHub runner registration) are not served",
    "modules/audit": "Security Hub standards and GuardDuty detector features are not served",
    "modules/certificate": "ACM's DNS validation needs the real DNS (the mocked terraform test covers it)",
}
SERVICES = ["ec2", "iam", "kms", "logs", "sts", "secretsmanager", "wafv2", "ecr", "s3", "ssm", "cloudwatch", "sns"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(message: str) -> None:
    print(f"[emulator] {message}", flush=True)


def terraform(workdir: Path, *args: str, env: dict) -> str:
    result = subprocess.run(["terraform", f"-chdir={workdir}", *args, "-no-color"],
                            capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-8000:])
        sys.stderr.write(result.stderr[-8000:])
        raise SystemExit(f"terraform {args[0]} failed")
    return result.stdout


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"[emulator] FAILED: {message}")
    step(f"ok  {message}")


def iam_policy(session, endpoint: str, role: str) -> str:
    document = session.client("iam", endpoint_url=endpoint).get_role_policy(RoleName=role, PolicyName="files")["PolicyDocument"]
    return document if isinstance(document, str) else json.dumps(document)


def main() -> None:
    for where, why in NOT_APPLIED.items():
        step(f"not applied: {where}: {why}")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(tempfile.mktemp(prefix="moto-", suffix=".log"), "w")
    # AWS managed policies (ReadOnlyAccess, ...) exist only when moto loads them.
    server_env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=server_env)
    work = Path(tempfile.mkdtemp(prefix="palaver-emulator-"))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("moto server did not start")
        step(f"moto server (pid {server.pid}) on {endpoint}")

        shutil.copytree(TF_ROOT, work / "terraform", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))
        stack = work / "terraform" / "tests" / "emulator"
        endpoints = "\n".join(f"    {service} = \"{endpoint}\"" for service in SERVICES)
        (stack / "provider.tf").write_text(f'''provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
''')
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
            env.pop("TF_CLI_CONFIG_FILE")
        init = ["init", "-backend=false", "-input=false"]
        if (PLUGINS / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            init.append(f"-plugin-dir={PLUGINS}")
        terraform(stack, *init, env=env)
        step("terraform apply")
        terraform(stack, "apply", "-auto-approve", "-input=false", env=env)
        outputs = {k: v["value"] for k, v in json.loads(terraform(stack, "output", "-json", env=env)).items()}

        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        client = lambda name: session.client(name, endpoint_url=endpoint)

        # modules/secret-value: the complete connection secret, password generated, not in state.
        value = json.loads(client("secretsmanager").get_secret_value(SecretId=outputs["app_secret_arn"])["SecretString"])
        check(set(value) == {"engine", "username", "password", "host", "port", "dbname"},
              f"the application secret holds every part of the URL ({sorted(value)})")
        check(len(value["password"]) == 40 and value["password"].isalnum(), "its password was generated (40 letters and digits)")
        state = (stack / "terraform.tfstate").read_text()
        check(value["password"] not in state, "the password is not in the Terraform state")

        # modules/security: rotating keys; the WAF lets 64 KiB bodies through and refuses more.
        kms = client("kms")
        keys = [k["KeyId"] for k in kms.list_keys()["Keys"]]
        rotating = [k for k in keys if kms.get_key_rotation_status(KeyId=k)["KeyRotationEnabled"]]
        check(len(rotating) >= 6, f"{len(rotating)} customer keys rotate (security's five, the registry's one)")
        acl_id = outputs["web_acl_arn"].rsplit("/", 1)[1]
        acl_name = outputs["web_acl_arn"].rsplit("/", 2)[1]
        acl = client("wafv2").get_web_acl(Name=acl_name, Scope="REGIONAL", Id=acl_id)["WebACL"]
        rules = {r["Name"]: r for r in acl["Rules"]}
        common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
        check("SizeRestrictions_BODY" in {o["Name"] for o in common.get("RuleActionOverrides", [])},
              "SizeRestrictions_BODY (8 KB) is counted, not blocking")
        import re
        body = rules["body-over-application-limit"]["Statement"]["AndStatement"]["Statements"]
        regex = body[0]["RegexMatchStatement"]["RegexString"]
        check(not re.match(regex, "65536") and re.match(regex, "65537") and not re.match(regex, "9000"),
              "the body rule refuses exactly Content-Lengths over 64 KiB")
        exempt = body[1]["NotStatement"]["Statement"]["RegexMatchStatement"]["RegexString"]
        check(re.match(exempt, "/api/v1/rooms/general/files") and not re.match(exempt, "/api/v1/rooms/general/messages"),
              "... on every route but the upload route")
        upload = rules["upload-over-file-limit"]["Statement"]["AndStatement"]["Statements"]
        regex = upload[0]["RegexMatchStatement"]["RegexString"]
        check(not re.match(regex, "26214400") and re.match(regex, "26214401") and not re.match(regex, "65537"),
              "the upload route refuses exactly Content-Lengths over 25 MiB (--max-file-bytes)")
        check(upload[1]["RegexMatchStatement"]["RegexString"] == exempt, "... on the upload route only")

        # modules/files: SSE-KMS with the files key, no public access, TLS
        # only, multipart uploads aborted; a file goes in and out under the prefix.
        s3 = client("s3")
        bucket = outputs["files_bucket_name"]
        sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        check(sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
              and sse["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == outputs["files_kms_key_arn"],
              "the files bucket is SSE-KMS with the files key")
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        check(all(block.values()) and len(block) == 4, f"every public access is blocked ({block})")
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        check(any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in policy["Statement"]),
              "the bucket policy denies every request without TLS")
        rules_ = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        check(any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in rules_),
              "incomplete multipart uploads are aborted after a day")
        prefix = outputs["file_store_url"].split("/", 3)[3]
        check(outputs["file_store_url"] == f"s3://{bucket}/files", f"--file-store is s3://<bucket>/files ({outputs['file_store_url']})")
        # moto's endpoint is plain HTTP: the TLS-only policy refuses the
        # write; without the policy (put back right after) the same write
        # passes, so the refusal was the policy's.
        try:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/probe", Body=b"palaver")
            refused = False
        except s3.exceptions.ClientError as error:
            refused = error.response["Error"]["Code"] in ("403", "AccessDenied")
        check(refused, "a write without TLS is refused by the bucket policy")
        original = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        s3.delete_bucket_policy(Bucket=bucket)
        try:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/probe", Body=b"palaver")
            got = s3.get_object(Bucket=bucket, Key=f"{prefix}/probe")
            check(got["Body"].read() == b"palaver" and got["ServerSideEncryption"] == "aws:kms"
                  and got["SSEKMSKeyId"] == outputs["files_kms_key_arn"],
                  "without that policy the write passes: the file reads back, encrypted with the files key")
        finally:
            s3.put_bucket_policy(Bucket=bucket, Policy=original)
        access = json.loads(iam_policy(session, endpoint, outputs["api_role_name"]))
        resources = {r for s in access["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
        check(resources == {f"arn:aws:s3:::{bucket}/{prefix}/*", f"arn:aws:s3:::{bucket}", outputs["files_kms_key_arn"]},
              f"the api role's policy reaches that bucket, its prefix and the key only ({sorted(resources)})")
        listing = [s for s in access["Statement"] if s["Action"] == "s3:ListBucket"]
        check(listing and listing[0]["Condition"]["StringLike"]["s3:prefix"] == f"{prefix}/*", "... and lists under the prefix only")

        # modules/network: the VPC and its subnets.
        ec2 = client("ec2")
        vpc = ec2.describe_vpcs(VpcIds=[outputs["vpc_id"]])["Vpcs"][0]
        check(vpc["CidrBlock"] == "10.30.0.0/16", "the VPC has the given CIDR")
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [outputs["vpc_id"]]}])["Subnets"]
        check(len(subnets) == 9, f"nine subnets (public, private, database in three AZs): {len(subnets)}")

        # modules/registry: immutable, scanned, KMS-encrypted images; the OIDC provider; the CI roles.
        repo = client("ecr").describe_repositories(repositoryNames=["palaver-emulator"])["repositories"][0]
        check(repo["imageTagMutability"] == "IMMUTABLE", "image tags are immutable")
        check(repo["imageScanningConfiguration"]["scanOnPush"], "images are scanned on push")
        check(repo["encryptionConfiguration"]["encryptionType"] == "KMS", "images are KMS-encrypted")
        iam = client("iam")
        provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=outputs["github_oidc_provider_arn"])
        check(provider["ClientIDList"] == ["sts.amazonaws.com"], "the GitHub OIDC provider serves STS")
        trust = iam.get_role(RoleName="palaver-ci-release")["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        subjects = trust["Statement"][0]["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]
        check(set(subjects) == {"repo:palaver-chat/palaver:ref:refs/heads/main", "repo:palaver-chat/palaver:ref:refs/tags/v*"},
              "the release role trusts main and release tags of the repository only")

        step("terraform destroy")
        terraform(stack, "destroy", "-auto-approve", "-input=false", env=env)
        check(client("ecr").describe_repositories()["repositories"] == [], "destroy removed the image repository")
        left = [v for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] == outputs["vpc_id"]]
        check(left == [], "destroy removed the VPC")
        check(all(b["Name"] != outputs["files_bucket_name"] for b in client("s3").list_buckets()["Buckets"]),
              "destroy removed the files bucket")
        secrets = client("secretsmanager").list_secrets()["SecretList"]
        check(all(s["Name"] != "palaver-emulator/app/database" for s in secrets), "destroy removed the secret")
        step("apply, assert, destroy: passed")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
        log.close()


if __name__ == "__main__":
    main()
