"""Kubernetes manifests for the HTTP images (``--target container`` and ``gpu``), in three shapes:

- ``k8s``: a Deployment, a Service and a HorizontalPodAutoscaler (autoscaling/v2, CPU);
- ``knative``: a Knative Service (serving.knative.dev/v1) that scales to zero on concurrency;
- ``kserve``: a KServe InferenceService (serving.kserve.io/v1beta1) with the image as a custom
  predictor speaking the V2 (Open Inference) protocol.

Every shape carries the same container: port 8080, readiness on ``/v2/health/ready`` (a gpu image
off CUDA fails it), liveness on ``/v2/health/live``, a termination grace of 30 s around the
server's 25 s drain, memory requested from the image's measured memory (after loading the model
and answering its input example) with headroom, and ``nvidia.com/gpu: 1`` for gpu images.
"""

from __future__ import annotations

import math
import re

FORMATS = ("k8s", "knative", "kserve")
PORT = 8080
GRACE_SECONDS = 30  # the server drains in-flight requests for 25 s (MPACK_GRACEFUL_SECONDS)
MEMORY_HEADROOM = 1.5  # requests = measured x 1.5; limits = 2 x requests (batches allocate)
MEMORY_STEP_MIB = 16


def resource_name(model_name: str) -> str:
    """A DNS-1123 label from the model's name (Kubernetes names are lower-case, <= 63 chars)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:53].strip("-")
    return name or "model"


def container_spec(image: str, memory_mib: float, gpu: bool, name: str = "model") -> dict:
    request = max(MEMORY_STEP_MIB, math.ceil(memory_mib * MEMORY_HEADROOM / MEMORY_STEP_MIB) * MEMORY_STEP_MIB)
    resources = {"requests": {"cpu": "1" if gpu else "500m", "memory": f"{request}Mi"}, "limits": {"memory": f"{request * 2}Mi"}}
    if gpu:
        resources["requests"]["nvidia.com/gpu"] = 1
        resources["limits"]["nvidia.com/gpu"] = 1
    return {
        "name": name,
        "image": image,
        "args": ["serve"],
        "ports": [{"name": "http1", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": PORT}, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 10, "failureThreshold": 3},
        "startupProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 2, "failureThreshold": 60},
        "resources": resources,
    }


def kubernetes_manifests(fmt: str, image: str, model: dict, memory_mib: float, gpu: bool, namespace: str | None = None) -> list[dict]:
    """The documents of one shape (``FORMATS``) for ``image`` serving ``model`` (the manifest's model)."""
    name = resource_name(model["name"])
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/version": _label_value(str(model["version"])), "app.kubernetes.io/managed-by": "mpack"}
    metadata = {"name": name, "labels": labels, **({"namespace": namespace} if namespace else {})}
    return {"k8s": _plain, "knative": _knative, "kserve": _kserve}[fmt](image, name, metadata, labels, memory_mib, gpu)


def _plain(image, name, metadata, labels, memory_mib, gpu) -> list[dict]:
    selector = {"app.kubernetes.io/name": name}
    pod = {"terminationGracePeriodSeconds": GRACE_SECONDS, "containers": [container_spec(image, memory_mib, gpu)]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}]},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }
    return [deployment, service, autoscaler]


def _knative(image, name, metadata, labels, memory_mib, gpu) -> list[dict]:
    container = container_spec(image, memory_mib, gpu, name="model")  # probes name the serving port, as Knative allows
    annotations = {"autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/metric": "concurrency", "autoscaling.knative.dev/target": "8" if gpu else "4"}
    return [
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {"template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": {"containerConcurrency": 0, "timeoutSeconds": 300, "containers": [container]}}},
        }
    ]


def _kserve(image, name, metadata, labels, memory_mib, gpu) -> list[dict]:
    container = container_spec(image, memory_mib, gpu, name="kserve-container")
    container["env"] = [{"name": "PROTOCOL", "value": "v2"}]
    metadata = {**metadata, "annotations": {"serving.kserve.io/enable-prometheus-scraping": "true"}}
    return [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": metadata,
            "spec": {"predictor": {"minReplicas": 0, "terminationGracePeriodSeconds": GRACE_SECONDS, "containers": [container]}},
        }
    ]


def _label_value(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-._") or "1"
