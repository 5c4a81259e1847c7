"""`mpack export IMAGE --format k8s|knative|kserve` for a real container image built here: the
Deployment, Service and HorizontalPodAutoscaler are validated against the Kubernetes schema
(kubernetes-validate, strict: unknown fields fail); Knative's Service and KServe's
InferenceService are custom resources whose CRD schemas no package index ships, so their pod and
container parts are validated against the same Kubernetes schema (as a Pod) and their own fields
are checked by name. The memory request comes from running the image on its input example."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from tests.helpers.cli import assert_clean_error, mpack

pytestmark = pytest.mark.slow
VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module")
def fraud_image(built, base_image):
    return built("models:/fraud@champion", target="container", base_image=base_image, tag="mpack-test/fraud:1-container").artifact


def export(image: str, fmt: str, *extra: str) -> tuple[list[dict], str]:
    result = mpack("export", image, "--format", fmt, *extra, timeout=300)
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout)), result.stderr


def as_pod(spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": spec}


def mebibytes(quantity: str) -> int:
    return int(re.fullmatch(r"(\d+)Mi", quantity).group(1))


def test_k8s_manifests_are_valid_kubernetes_with_probes_grace_and_measured_memory(fraud_image):
    documents, log = export(fraud_image, "k8s")
    assert [d["kind"] for d in documents] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for document in documents:
        kubernetes_validate.validate(document, VERSION, strict=True)
    measured = float(re.search(r"measured (\d+) MiB serving the input example", log).group(1))
    assert 20 < measured < 2000, log
    pod = documents[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == fraud_image and pod["terminationGracePeriodSeconds"] == 30  # the server drains for 25 s
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    request = mebibytes(container["resources"]["requests"]["memory"])
    assert measured * 1.5 <= request < measured * 1.5 + 17 and mebibytes(container["resources"]["limits"]["memory"]) == 2 * request
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert documents[1]["spec"]["ports"][0]["targetPort"] == 8080 and documents[2]["spec"]["scaleTargetRef"]["name"] == documents[0]["metadata"]["name"]


def test_knative_and_kserve_resources_carry_a_valid_pod(fraud_image):
    (knative,), _ = export(fraud_image, "knative", "--memory-mib", "300", "--namespace", "models")
    assert (knative["apiVersion"], knative["kind"], knative["metadata"]["namespace"]) == ("serving.knative.dev/v1", "Service", "models")
    template = knative["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"  # scales to zero
    spec = {k: v for k, v in template["spec"].items() if k not in ("containerConcurrency", "timeoutSeconds")}
    kubernetes_validate.validate(as_pod(spec), VERSION, strict=True)
    assert mebibytes(spec["containers"][0]["resources"]["requests"]["memory"]) == 464  # 300 x 1.5, to 16 MiB

    (kserve,), _ = export(fraud_image, "kserve", "--memory-mib", "300")
    assert (kserve["apiVersion"], kserve["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = kserve["spec"]["predictor"]
    container = predictor["containers"][0]
    assert container["name"] == "kserve-container" and {"name": "PROTOCOL", "value": "v2"} in container["env"]
    kubernetes_validate.validate(as_pod({k: v for k, v in predictor.items() if k != "minReplicas"}), VERSION, strict=True)


def test_export_for_kubernetes_needs_an_http_image_and_a_sensible_memory(fraud_image, tmp_path):
    assert_clean_error(mpack("export", "mpack-test/no-such-image:1", "--format", "k8s"), "the image mpack-test/no-such-image:1 is not on this machine", "--target container|gpu")
    assert_clean_error(mpack("export", "mpack-test/python:3.11-bookworm", "--format", "k8s"), "holds no /opt/mpack/model/mpack.json", "--target container or gpu")
    assert_clean_error(mpack("export", fraud_image, "--format", "k8s", "--memory-mib", "-5"), "--memory-mib -5 is not a memory size")
