"""The rendered Kubernetes manifests (issue "scale"), checked offline: every
manifest against the schemas of a pinned Kubernetes version, a checkov policy
scan with no failed check (skips carry a written reason), kustomizations that
name only files that exist, and a Secret that is referenced but never shipped."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import UV, copy_project, uv_env

pytestmark = pytest.mark.slow

KUBERNETES = "1.33.0"
TOOLS = ["kubernetes-validate==1.37.0", "checkov==3.3.30"]


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("k8s-tools") / "venv"
    subprocess.run([*UV, "venv", "-q", str(venv)], check=True, env=uv_env())
    subprocess.run(
        [*UV, "pip", "install", "-q", "--python", str(venv / "bin/python"), *TOOLS],
        check=True,
        env=uv_env(),
    )
    return venv / "bin"


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory, template_repo: Path) -> Path:
    root = tmp_path_factory.mktemp("k8s") / "svc"
    copy_project(template_repo, root, database="postgresql")
    return root / "deploy/kubernetes"


def _documents(folder: Path) -> dict[Path, dict[str, Any]]:
    return {path: yaml.safe_load(path.read_text()) for path in sorted(folder.rglob("*.yaml"))}


def test_every_manifest_is_valid_for_the_pinned_kubernetes(deploy: Path, tools: Path) -> None:
    manifests = [p for p in _documents(deploy) if p.name != "kustomization.yaml"]
    assert len(manifests) == 12
    done = subprocess.run(
        [str(tools / "kubernetes-validate"), "--strict", "-k", KUBERNETES, *map(str, manifests)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed ") == len(manifests), done.stdout


def test_the_policy_scan_finds_nothing_and_every_skip_says_why(deploy: Path, tools: Path) -> None:
    done = subprocess.run(
        [
            str(tools / "checkov"),
            "--directory",
            str(deploy),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",  # offline: no calls home
        ],
        capture_output=True,
        text=True,
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, json.dumps(report["results"]["failed_checks"], indent=1)
    assert summary["passed"] > 150
    skipped = report["results"]["skipped_checks"]
    # Probes: the job pods (worker, scheduler) take no traffic; the worker's one
    # port is its metrics.
    assert {check["check_id"] for check in skipped} == {
        "CKV_K8S_35",
        "CKV_K8S_43",
        "CKV_K8S_8",
        "CKV_K8S_9",
    }
    probeless = {c["resource"] for c in skipped if c["check_id"] in ("CKV_K8S_8", "CKV_K8S_9")}
    assert all("-worker" in r or "-scheduler" in r for r in probeless), probeless
    assert all(len(check["check_result"]["suppress_comment"]) > 40 for check in skipped)


def test_kustomizations_name_every_manifest_once_and_nothing_missing(deploy: Path) -> None:
    listed: list[Path] = []
    for kustomization in deploy.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text())["resources"]:
            target = (kustomization.parent / entry).resolve()
            assert target.exists(), f"{kustomization}: {entry}"
            if target.is_dir():
                assert (target / "kustomization.yaml").is_file()
            else:
                listed.append(target)
    manifests = [p.resolve() for p in deploy.rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert sorted(listed) == sorted(manifests)


def test_the_secret_is_referenced_never_shipped(deploy: Path) -> None:
    documents = _documents(deploy)
    assert all(doc.get("kind") != "Secret" for doc in documents.values())
    text = "\n".join(path.read_text() for path in documents)
    assert "SECRET_KEY=" not in re.sub(r"#.*", "", text)
    workloads = [doc for doc in documents.values() if doc["kind"] in ("Deployment", "Job")]
    assert len(workloads) == 4  # the service, its worker and scheduler, the migration
    for workload in workloads:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        sources = {
            next(iter(source)): next(iter(source.values()))["name"]
            for source in container["envFrom"]
        }
        assert sources == {
            "configMapRef": "wellnest-service-config",
            "secretRef": "wellnest-service-secrets",
        }


def test_the_deployment_runs_what_the_image_runs_and_probes_real_routes(
    deploy: Path,
) -> None:
    project = deploy.parent.parent
    deployment = yaml.safe_load((deploy / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    cmd = re.search(r"^CMD (.+)$", (project / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None
    assert container["command"] == json.loads(cmd.group(1))
    assert container["ports"][0]["containerPort"] == 8000
    assert "EXPOSE 8000" in (project / "Dockerfile").read_text()
    main = (project / "app/main.py").read_text()
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        path = container[probe]["httpGet"]["path"]
        assert f'"{path}"' in main, path
    env = {item["name"]: item["value"] for item in container["env"]}
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert "/tmp" in mounts  # the one writable place on a read-only root
    grace = pod["terminationGracePeriodSeconds"]
    config = yaml.safe_load((deploy / "config/configmap.yaml").read_text())["data"]
    assert int(config["GRACEFUL_SHUTDOWN_SECONDS"]) + 5 < grace  # 5: the preStop sleep


def test_the_job_pods_run_the_job_commands_one_scheduler_ever(deploy: Path) -> None:
    project = deploy.parent.parent
    example = (project / ".env.example").read_text()
    settings = {
        key: int(value)
        for key, value in re.findall(r"^(JOB_METRICS_PORT)=(\d+)$", example, re.MULTILINE)
    }
    for kind, replicas, strategy in (("worker", 2, "RollingUpdate"), ("scheduler", 1, "Recreate")):
        deployment = yaml.safe_load((deploy / f"{kind}.yaml").read_text())
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", "app", kind]
        # The worker serves its metrics on JOB_METRICS_PORT; the scheduler, nothing.
        ports = [port["containerPort"] for port in container.get("ports", [])]
        assert ports == ([settings["JOB_METRICS_PORT"]] if kind == "worker" else [])
        assert deployment["spec"]["replicas"] == replicas
        assert deployment["spec"]["strategy"]["type"] == strategy
    policy = yaml.safe_load((deploy / "jobs-networkpolicy.yaml").read_text())
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 9100, "protocol": "TCP"}]}]
    main = (project / "app/__main__.py").read_text()
    assert '"worker"' in main
    assert '"scheduler"' in main


def test_sqlite_projects_get_no_manifests(tmp_path: Path, template_repo: Path) -> None:
    project = copy_project(template_repo, tmp_path / "svc", database="sqlite")
    assert not (project / "deploy").exists()
