"""infra/: the Zappa settings, the CloudFormation template and the code agree with each other.

What a deploy would otherwise find out on AWS: a handler path that does not import, a queue the
code sends to that the template does not create, an SQS mapping without per-record failures, a
role that lets a function touch another's queue, a secret in the Lambda configuration.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import re
import subprocess
import sys
import urllib.parse
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sync_lambdas import driver
from tests.aws.conftest import Stack
from web import aws
from web import config as app_config

ROOT = app_config.PROJECT_ROOT
TEMPLATE = json.loads((ROOT / "infra" / "cloudformation.json").read_text())
ZAPPA = json.loads((ROOT / "infra" / "zappa_settings.json").read_text())
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]

# The SQS queue each consuming function reads (sync_lambdas/*.py: batch.process(event, QUEUE)).
CONSUMERS = {
    "intake": aws.INTAKE,
    "push": aws.PUSH,
    "poll": aws.POLL,  # the schedule's half-ticks
    "jobs": aws.JOBS,
    "render": aws.RENDER,
}
SCHEDULED = {"push": "rate(1 minute)", "poll": "rate(1 minute)", "maintenance": "rate(5 minutes)"}


def stage(name: str) -> dict[str, Any]:
    """A stage's settings with its `extends` applied, as Zappa reads them."""
    settings = dict(ZAPPA[name])
    parent = settings.pop("extends", None)
    return {**stage(parent), **settings} if parent else settings


def sub(value: Any, **names: str) -> str:
    """A template string (`Fn::Sub` or plain) with the parameters' defaults (or `names`)."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    for parameter, spec in PARAMETERS.items():
        text = text.replace("${" + parameter + "}", str(names.get(parameter, spec.get("Default"))))
    return str(text)


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def queue_resource(queue_name: str) -> str:
    """The template's resource whose QueueName is that name (with the default prefix)."""
    found = [
        name
        for name, r in of_type("AWS::SQS::Queue").items()
        if sub(r["Properties"]["QueueName"]) == queue_name
    ]
    assert len(found) == 1, f"{queue_name}: {found}"
    return found[0]


def function_name(stage_name: str) -> str:
    return f"{ZAPPA['production']['project_name']}-{stage_name}"


def handler_paths() -> list[str]:
    """Every module.attribute the Zappa settings make Lambda (or Zappa's handler) call."""
    paths = {stage("production")["app_function"]}
    for name in ZAPPA:
        settings = stage(name)
        if name != "production":
            paths.add(settings["lambda_handler"])
        paths.update(event["function"] for event in settings.get("events", []))
    return sorted(paths)


def test_the_template_creates_every_queue_the_code_names_with_its_dead_letter_queue() -> None:
    prefix = PARAMETERS["Prefix"]["Default"]
    for queue in aws.ALL_QUEUES:
        resource = RESOURCES[queue_resource(aws.queue_name(prefix, queue))]
        dead_letter = queue_resource(aws.dead_letter_name(prefix, queue))
        redrive = resource["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dead_letter, "Arn"]}
        assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
        fifo = resource["Properties"].get("FifoQueue", False)
        assert fifo == (queue in aws.FIFO_QUEUES)
        assert RESOURCES[dead_letter]["Properties"].get("FifoQueue", False) == fifo
    queues = len(of_type("AWS::SQS::Queue"))
    assert queues == 2 * len(aws.ALL_QUEUES), "a queue the code does not know of"


def test_the_production_settings_name_the_template_defaults() -> None:
    production = stage("production")
    environment = production["aws_environment_variables"]
    assert production["app_function"] == "web.wsgi.app"
    assert environment["APP_QUEUE"] == "sqs" and environment["APP_STORAGE"] == "s3"
    assert environment["APP_AWS_PREFIX"] == PARAMETERS["Prefix"]["Default"]
    assert environment["APP_AWS_REGION"] == production["aws_region"]
    assert environment["APP_SSM_PATH"].rstrip("/") == PARAMETERS["SsmPath"]["Default"]
    assert production["project_name"] == PARAMETERS["FunctionPrefix"]["Default"]


def test_no_secret_is_in_the_zappa_settings() -> None:
    for name in ZAPPA:
        settings = stage(name)
        variables = {
            **settings.get("environment_variables", {}),
            **settings.get("aws_environment_variables", {}),
        }
        for secret in ("DATABASE_URL", "APP_SECRET_KEY", "APP_ENCRYPTION_KEY"):
            assert secret not in variables, f"{name}: {secret} belongs in SSM Parameter Store"


def test_every_function_runs_as_its_own_role_from_the_template() -> None:
    roles = {sub(r["Properties"]["RoleName"]): r for r in of_type("AWS::IAM::Role").values()}
    names = [stage(name)["role_name"] for name in ZAPPA]
    assert len(set(names)) == len(names), "two functions share a role"
    for name in ZAPPA:
        settings = stage(name)
        assert settings["manage_roles"] is False, f"{name}: Zappa would make a role of its own"
        assert settings["role_name"] in roles, f"{name}: no role {settings['role_name']}"
        role = roles[settings["role_name"]]
        assert function_name(name) in sub(role["Properties"]["Description"])


def test_each_queue_is_mapped_to_its_function_with_per_record_failures() -> None:
    mappings = of_type("AWS::Lambda::EventSourceMapping")
    by_function = {sub(m["Properties"]["FunctionName"]): m for m in mappings.values()}
    assert len(by_function) == len(mappings) == len(CONSUMERS)
    for name, queue in CONSUMERS.items():
        assert stage(name)["lambda_handler"] == f"sync_lambdas.{name}.handler"
        mapping = by_function[function_name(name)]
        source = queue_resource(aws.queue_name(PARAMETERS["Prefix"]["Default"], queue))
        properties = mapping["Properties"]
        assert properties["EventSourceArn"] == {"Fn::GetAtt": [source, "Arn"]}
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert 1 <= properties["BatchSize"] <= 10
        assert properties["ScalingConfig"]["MaximumConcurrency"] >= 2
        # Without the functions (moto, the first deploy) the template must still deploy.
        assert mapping["Condition"] == "WithFunctions"
    assert PARAMETERS["FunctionsDeployed"]["Default"] == "false"
    assert TEMPLATE["Conditions"]["WithFunctions"] == {
        "Fn::Equals": [{"Ref": "FunctionsDeployed"}, "true"]
    }


def test_each_queue_outlasts_the_function_that_reads_it() -> None:
    """A message must stay invisible while its function may still work on it (AWS advises six
    times the function's timeout for event source mappings), or it is delivered twice."""
    for name, queue in CONSUMERS.items():
        resource = RESOURCES[queue_resource(aws.queue_name("comptoir", queue))]
        visibility = PARAMETERS[resource["Properties"]["VisibilityTimeout"]["Ref"]]["Default"]
        timeout = stage(name)["timeout_seconds"]
        # For a 15-minute function a minute beyond its longest run: retrying a stuck job an hour
        # and a half later would help nobody.
        needed = 6 * timeout if timeout < 900 else timeout + 60
        assert visibility >= needed, f"{name}: {visibility} s, {needed} s needed"


@pytest.mark.parametrize("name", ["push", "poll"])
def test_a_scheduled_function_has_time_for_work_beyond_what_it_keeps_in_hand(name: str) -> None:
    """push and poll stop starting work when less than RESERVE_SECONDS are left: a function
    whose timeout is not well above that would do nothing on its schedule."""
    module = importlib.import_module(f"sync_lambdas.{name}")
    assert stage(name)["timeout_seconds"] >= 2 * module.RESERVE_SECONDS


def test_the_schedules_call_their_own_functions_handler() -> None:
    """Zappa's rule invokes the stage's function, whose Lambda handler is `lambda_handler`:
    the event's `function` must be that handler, which must take EventBridge's event."""
    scheduled = {}
    for name in ZAPPA:
        settings = stage(name)
        for event in settings.get("events", []):
            assert event["function"] == settings.get("lambda_handler"), name
            assert re.fullmatch(r"(rate|cron)\(.+\)", event["expression"])
            scheduled[name] = event["expression"]
    assert scheduled == SCHEDULED


@pytest.mark.parametrize("path", handler_paths())
def test_every_handler_path_imports(path: str, tmp_path: Path) -> None:
    """In a fresh interpreter, as a cold start would (web.wsgi builds the app on import)."""
    module, attribute = path.rsplit(".", 1)
    code = (
        "import importlib, sys\n"
        f"target = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "assert callable(target), type(target)\n"
    )
    environment = {
        "PATH": "/usr/bin:/bin",
        "APP_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'import.sqlite'}",
        "APP_SECRET_KEY": "import-check",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_deployed_roles_reach_only_their_own_queues(aws_stack: Stack) -> None:
    iam = aws.client("iam", aws_stack.settings)
    prefix = aws_stack.settings.prefix

    def grants(role: str) -> dict[str, set[str]]:
        """Statement id → the queue and bucket names it covers."""
        names = iam.list_role_policies(RoleName=f"{prefix}-{role}")["PolicyNames"]
        document = iam.get_role_policy(RoleName=f"{prefix}-{role}", PolicyName=names[0])
        policy = document["PolicyDocument"]
        if isinstance(policy, str):
            # moto's CloudFormation stores the template's policy as Python's repr of it.
            policy = ast.literal_eval(urllib.parse.unquote(policy))
        statements = policy["Statement"]
        return {
            s["Sid"]: {
                str(r).rsplit(":", 1)[-1]
                for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
            }
            for s in statements
        }

    def queues(*names: str, dead: bool = False) -> set[str]:
        name = aws.dead_letter_name if dead else aws.queue_name
        return {name(prefix, queue) for queue in names}

    intake = grants("intake")
    assert intake["Consume"] == queues(aws.INTAKE)
    # Applying a delivery may store its follow-up (the payments to read from the shop).
    assert aws.queue_name(prefix, aws.INTAKE) in intake["Announce"]
    assert "Documents" not in intake and "DrainDeadLetters" not in intake
    web = grants("web")
    assert "Consume" not in web
    assert web["Announce"] == queues(*aws.QUEUES)
    assert web["Documents"] == {f"{aws_stack.settings.bucket}/*"}
    assert grants("render")["Consume"] == queues(aws.RENDER)
    # The poll function reads its half-ticks and sends them; nobody else touches its queue.
    poll = grants("poll")
    assert poll["Consume"] == queues(aws.POLL)
    assert poll["Announce"] == queues(aws.INTAKE, aws.PUSH, aws.JOBS, aws.POLL)
    assert grants("maintenance")["DrainDeadLetters"] == queues(*aws.QUEUES, dead=True)
    for role in ("web", "intake", "push", "poll", "jobs", "render", "maintenance"):
        assert grants(role)["Secrets"] == {
            "parameter/comptoir/production",
            "parameter/comptoir/production/*",
        }


def test_the_bucket_refuses_plain_http() -> None:
    """Read from the template: moto's CloudFormation does not create AWS::S3::BucketPolicy."""
    (policy,) = of_type("AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": "DocumentsBucket"}
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "s3:*",
    )
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert [r["Fn::Sub"] for r in statement["Resource"]] == [
        "arn:${AWS::Partition}:s3:::${DocumentsBucket}",
        "arn:${AWS::Partition}:s3:::${DocumentsBucket}/*",
    ]


def test_secrets_are_read_from_parameter_store_at_start_up(moto_endpoint: str) -> None:
    path = f"/comptoir-test/{uuid.uuid4().hex[:8]}"
    ssm = aws.client("ssm", aws.AwsSettings(endpoint_url=moto_endpoint))
    stored = {
        "DATABASE_URL": "postgresql+psycopg://comptoir:s3cret@db.internal/comptoir",
        "APP_SECRET_KEY": "secret-from-ssm",
        "APP_ORDERS_PER_PAGE": "40",
        "NOT_A_SETTING": "ignored",
    }
    for name, value in stored.items():
        ssm.put_parameter(Name=f"{path}/{name}", Value=value, Type="SecureString")
    ssm.put_parameter(Name=f"{path}/deeper/APP_BASE_URL", Value="https://no", Type="String")

    config = app_config.load(
        {"SSM_PATH": path + "/", "AWS_ENDPOINT_URL": moto_endpoint},
        environ={"APP_SECRET_KEY": "from-the-environment", "APP_BASE_URL": "https://shop.test"},
    )

    assert config["DATABASE_URL"] == stored["DATABASE_URL"]
    assert config["SECRET_KEY"] == "secret-from-ssm"
    assert config["ORDERS_PER_PAGE"] == 40
    assert config["BASE_URL"] == "https://shop.test"
    assert "NOT_A_SETTING" not in config


def test_once_the_functions_exist_each_queue_feeds_its_function(moto_endpoint: str) -> None:
    """The template as deployed again after `zappa deploy` (FunctionsDeployed=true), on moto
    with stand-in functions: each consuming function reads its own queue, per record.

    A stack of its own, created with the functions already there: moto does not add resources
    whose condition turns true on an update."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = aws.AwsSettings(endpoint_url=moto_endpoint, prefix=prefix, bucket=f"{prefix}-docs")
    iam = aws.client("iam", settings)
    functions = aws.client("lambda", settings)
    role = iam.create_role(
        RoleName=f"{prefix}-stand-in",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as code:
        code.writestr("stand_in.py", "def handler(event, context):\n    return {}\n")
    for name in CONSUMERS:
        functions.create_function(
            FunctionName=f"{prefix}-{name}",
            Runtime=stage(name)["runtime"],
            Role=role,
            Handler="stand_in.handler",
            Code={"ZipFile": archive.getvalue()},
        )

    driver.deploy_stack(
        settings,
        prefix,
        json.dumps(TEMPLATE),
        {"FunctionPrefix": prefix, "FunctionsDeployed": "true"},
    )

    mapped = {}
    for name in CONSUMERS:
        (mapping,) = functions.list_event_source_mappings(FunctionName=f"{prefix}-{name}")[
            "EventSourceMappings"
        ]
        mapped[name] = mapping["EventSourceArn"].rsplit(":", 1)[-1]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # One half-tick per invocation: a batch of them would poll once for several.
        assert mapping["BatchSize"] == (10 if name in ("intake", "push") else 1)
    assert mapped == {name: aws.queue_name(prefix, q) for name, q in CONSUMERS.items()}
