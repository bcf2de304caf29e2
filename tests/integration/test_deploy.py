"""Issues 7 and 13 on the real apiserver: the Helm chart (rendered by the Go-built helm) and the kustomize base
render the same objects, both are accepted by the API server, and the ServiceAccount they create has exactly the
access the operator needs (`kubectl auth can-i --as` and real attempts with a TokenRequest token): get and patch
of the target DaemonSet by name in its namespace, status of the policies, Events in `default`, list/watch of
nodes and pods; 403 for any other DaemonSet, aws-node elsewhere, listing DaemonSets, Events elsewhere, Secrets.
Then the operator itself runs on that token and serves a policy."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.fixtures.moto import MotoEc2
from tests.integration.test_plan_status import condition, create_policy, eks_nodes, fast_spec, wait_status
from tests.kube import (
    aws_node_daemonset,
    container_env,
    create_aws_node,
    ensure_namespace,
    grant_target,
    read_aws_node,
    unique,
    wait_for,
)
from tests.operator_proc import OperatorProcess
from warmpool.api import v1alpha1
from warmpool_dev.devcluster.cluster import DevCluster, run_kubectl

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "warmpool-operator"
BASE = REPO / "deploy" / "kustomize" / "base"
NAMESPACE = "kube-system"
NAME = "warmpool-operator"
FIELD_MANAGER = "warmpool-deploy-test"

Key = tuple[str, str, str]  # kind, namespace, name


def _docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def helm_template(cluster: DevCluster, *extra: str) -> list[dict[str, Any]]:
    assert cluster.state is not None
    helm = str(Path(cluster.state.bin_dir) / "helm")
    return _docs(_run(helm, "template", "warmpool", str(CHART), "--namespace", NAMESPACE, "--include-crds", *extra))


def kustomize(cluster: DevCluster, path: Path) -> list[dict[str, Any]]:
    return _docs(cluster.kubectl("kustomize", str(path)).stdout)


def by_key(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        assert key not in out, f"rendered twice: {key}"
        out[key] = obj
    return out


def pod_essentials(deployment: dict[str, Any]) -> dict[str, Any]:
    """What decides how the operator runs; labels that only say who rendered it are left out."""
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    return {
        "replicas": spec["replicas"],
        "strategy": spec["strategy"],
        "selector": spec["selector"],
        "annotations": spec["template"]["metadata"].get("annotations"),
        "selector_labels_on_pod": {
            k: spec["template"]["metadata"]["labels"].get(k) for k in spec["selector"]["matchLabels"]
        },
        "pod": {k: v for k, v in pod.items() if k != "containers"},
        "containers": pod["containers"],
    }


@pytest.fixture(scope="module")
def chart(cluster: DevCluster) -> list[dict[str, Any]]:
    return helm_template(cluster)


@pytest.fixture(scope="module")
def base(cluster: DevCluster) -> list[dict[str, Any]]:
    return kustomize(cluster, BASE)


def test_chart_and_kustomize_base_render_the_same_objects(
    chart: list[dict[str, Any]], base: list[dict[str, Any]]
) -> None:
    charted, based = by_key(chart), by_key(base)
    assert (
        set(charted)
        == set(based)
        == {
            ("CustomResourceDefinition", "", "warmpoolpolicies.warmpool.io"),
            ("ServiceAccount", NAMESPACE, NAME),
            ("ClusterRole", "", NAME),
            ("ClusterRoleBinding", "", NAME),
            ("Role", NAMESPACE, f"{NAME}-target"),
            ("RoleBinding", NAMESPACE, f"{NAME}-target"),
            ("Role", "default", f"{NAME}-events"),
            ("RoleBinding", "default", f"{NAME}-events"),
            ("ValidatingAdmissionPolicy", "", f"{NAME}-daemonset-env"),
            ("ValidatingAdmissionPolicyBinding", "", f"{NAME}-daemonset-env"),
            ("ValidatingAdmissionPolicy", "", f"{NAME}-policy-spec"),
            ("ValidatingAdmissionPolicyBinding", "", f"{NAME}-policy-spec"),
            ("Deployment", NAMESPACE, NAME),
            ("PodDisruptionBudget", NAMESPACE, NAME),
        }
    )
    for key in charted:
        assert charted[key]["apiVersion"] == based[key]["apiVersion"], key
    crd = ("CustomResourceDefinition", "", "warmpoolpolicies.warmpool.io")
    generated = yaml.safe_load((REPO / "crds" / "warmpoolpolicies.yaml").read_text())
    assert charted[crd] == based[crd] == generated

    # RBAC: exactly the rules (and bindings) of deploy/kustomize/base/rbac.yaml, the file the dev cluster applies.
    assert_same_rbac(charted, based)
    assert_same_rbac(charted, by_key(_docs((BASE / "rbac.yaml").read_text())))
    for rendered in (charted, based):
        assert not rendered[("ServiceAccount", NAMESPACE, NAME)]["metadata"].get("annotations")
    for key in charted:
        if key[0].startswith("ValidatingAdmissionPolicy"):
            assert charted[key]["spec"] == based[key]["spec"], key

    deployment = ("Deployment", NAMESPACE, NAME)
    assert pod_essentials(charted[deployment]) == pod_essentials(based[deployment])
    pdb = ("PodDisruptionBudget", NAMESPACE, NAME)
    assert charted[pdb]["spec"] == based[pdb]["spec"]


RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def assert_same_rbac(one: dict[Key, dict[str, Any]], other: dict[Key, dict[str, Any]]) -> None:
    """The same RBAC objects with the same rules, roleRefs and subjects (labels may differ)."""
    keys = {k for k in one if k[0] in RBAC_KINDS}
    assert keys == {k for k in other if k[0] in RBAC_KINDS}
    for key in keys:
        for field in ("rules", "roleRef", "subjects"):
            assert one[key].get(field) == other[key].get(field), (key, field)


def test_targets_value_and_kustomize_patch_render_the_same_roles(cluster: DevCluster) -> None:
    """Retargeting: Helm's `rbac.targets` and the custom-target overlay's patch give the same Roles; several
    targets in one namespace share one Role, each namespace gets its own."""
    overlay = by_key(kustomize(cluster, REPO / "deploy" / "kustomize" / "overlays" / "custom-target"))
    charted = by_key(helm_template(cluster, "--set", "rbac.targets[0].namespace=aws-cni,rbac.targets[0].name=aws-node"))
    assert_same_rbac(charted, overlay)
    assert ("Role", NAMESPACE, f"{NAME}-target") not in overlay
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        for name in (f"{NAME}-daemonset-env", f"{NAME}-policy-spec"):
            assert charted[(kind, "", name)]["spec"] == overlay[(kind, "", name)]["spec"], (kind, name)

    several = by_key(
        helm_template(
            cluster,
            "--set",
            "rbac.targets[0].namespace=a,rbac.targets[0].name=x,rbac.targets[1].namespace=b,rbac.targets[1].name=y,"
            "rbac.targets[2].namespace=a,rbac.targets[2].name=z",
        )
    )
    roles = {k[1]: v["rules"] for k, v in several.items() if k[0] == "Role" and k[2] == f"{NAME}-target"}
    proxy = {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]}  # ipamd's metrics (ipamdMetrics=proxy)
    assert roles == {
        "a": [
            {
                "apiGroups": ["apps"],
                "resources": ["daemonsets"],
                "resourceNames": ["x", "z"],
                "verbs": ["get", "patch"],
            },
            proxy,
        ],
        "b": [
            {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": ["y"], "verbs": ["get", "patch"]},
            proxy,
        ],
    }
    # Reading ipamd directly (or not at all) needs no pod proxy: the chart leaves the rule out.
    direct = by_key(helm_template(cluster, "--set", "ipamdMetrics=direct"))
    assert direct[("Role", NAMESPACE, f"{NAME}-target")]["rules"] == [
        {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": ["aws-node"], "verbs": ["get", "patch"]}
    ]
    deployment = next(v for k, v in direct.items() if k[0] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WARMPOOL_IPAMD_METRICS"] == "direct"
    assert cluster.state is not None
    helm = str(Path(cluster.state.bin_dir) / "helm")
    for bad, message in (
        ("rbac.targets=null", "rbac.targets must list the DaemonSets policies may target"),
        ("rbac.targets[0].namespace=a", "rbac.targets[0].name is required"),
    ):
        result = subprocess.run(
            [helm, "template", "w", str(CHART), "--set", bad], capture_output=True, text=True, check=False
        )
        assert result.returncode != 0
        assert message in result.stderr


def test_chart_admission_policy_follows_release_names_and_containers(cluster: DevCluster) -> None:
    """Another namespace, name and ipamd container: the policies match that ServiceAccount and container."""
    assert cluster.state is not None
    helm = str(Path(cluster.state.bin_dir) / "helm")
    args = ["--set", "nameOverride=wp", "--set", "rbac.targets[0].namespace=cni,rbac.targets[0].name=ipamd-ds"]
    rendered = _docs(
        _run(helm, "template", "w", str(CHART), "--namespace", "ops", *args, "--set", "rbac.targets[0].container=ipamd")
    )
    found = by_key(rendered)
    for name in ("wp-daemonset-env", "wp-policy-spec"):
        spec = found[("ValidatingAdmissionPolicy", "", name)]["spec"]
        assert spec["matchConditions"][0]["expression"] == "request.userInfo.username == 'system:serviceaccount:ops:wp'"
        assert found[("ValidatingAdmissionPolicyBinding", "", name)]["spec"]["policyName"] == name
        assert found[("ValidatingAdmissionPolicy", "", name)]["metadata"]["labels"]["app.kubernetes.io/name"] == "wp"
    variables = {
        v["name"]: v["expression"]
        for v in found[("ValidatingAdmissionPolicy", "", "wp-daemonset-env")]["spec"]["variables"]
    }
    assert variables["managedContainers"] == "['ipamd']"
    assert ("Role", "cni", "wp-target") in found
    # Off: no admission objects at all (clusters older than 1.30).
    off = by_key(_docs(_run(helm, "template", "w", str(CHART), "--set", "admissionPolicy.enabled=false")))
    assert not [k for k in off if k[0].startswith("ValidatingAdmissionPolicy")]
    # A container name that is not one cannot reach the CEL text.
    bad = subprocess.run(
        [
            helm,
            "template",
            "w",
            str(CHART),
            "--set",
            "rbac.targets[0].namespace=a,rbac.targets[0].name=b,rbac.targets[0].container=x' || true || '",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "is not a container name" in bad.stderr


def test_deployment_runs_hardened_with_probe_and_metrics(chart: list[dict[str, Any]]) -> None:
    deployment = by_key(chart)[("Deployment", NAMESPACE, NAME)]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == NAME
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"healthz": 8080, "metrics": 9090}
    assert spec["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
    }
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["WARMPOOL_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "WARMPOOL_PEERING" not in env


def test_chart_options_irsa_peering_and_service_monitor(cluster: DevCluster) -> None:
    role_arn = "arn:aws:iam::111122223333:role/warmpool-operator"
    rendered = by_key(
        helm_template(
            cluster,
            "--set",
            f"serviceAccount.roleArn={role_arn}",
            "--set",
            "peering.enabled=true",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--api-versions",
            "kopf.dev/v1/ClusterKopfPeering",
        )
    )
    sa = rendered[("ServiceAccount", NAMESPACE, NAME)]
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role_arn}
    deployment = rendered[("Deployment", NAMESPACE, NAME)]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WARMPOOL_PEERING"] == "warmpool"
    assert ("ClusterKopfPeering", "", "warmpool") in rendered
    peering_role = rendered[("ClusterRole", "", f"{NAME}-peering")]
    assert {tuple(r["verbs"]): r.get("resourceNames") for r in peering_role["rules"]} == {
        ("list", "watch"): None,
        ("patch",): ["warmpool"],
    }
    ha_kustomize = by_key(kustomize(cluster, REPO / "deploy" / "kustomize" / "overlays" / "eks-ha"))
    assert_same_rbac(rendered, ha_kustomize)
    monitor = rendered[("ServiceMonitor", NAMESPACE, NAME)]
    service = rendered[("Service", NAMESPACE, f"{NAME}-metrics")]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    # Without the ClusterKopfPeering CRD the chart refuses, saying what to install.
    assert cluster.state is not None
    result = subprocess.run(
        [str(Path(cluster.state.bin_dir) / "helm"), "template", "w", str(CHART), "--set", "peering.enabled=true"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "clusterkopfpeering-crd.yaml" in result.stderr


def apply(cluster: DevCluster, objects: list[dict[str, Any]], tmp_path: Path, *flags: str) -> str:
    manifest = tmp_path / f"manifest-{unique('m')}.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    return cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", *flags, "-f", str(manifest)
    ).stdout


def test_rendered_objects_apply_dry_run_then_for_real(
    cluster: DevCluster, chart: list[dict[str, Any]], base: list[dict[str, Any]], tmp_path: Path
) -> None:
    # The dev cluster already holds rbac.yaml and the CRD (applied by another field manager): no conflict.
    for objects in (chart, base):
        out = apply(cluster, objects, tmp_path, "--dry-run=server")
        assert out.count("(server dry run)") == len(objects), out
    apply(cluster, chart, tmp_path)
    for obj in chart:
        namespace = ["-n", obj["metadata"]["namespace"]] if obj["metadata"].get("namespace") else []
        got = json.loads(
            cluster.kubectl(
                "get", obj["kind"], obj["metadata"]["name"], *namespace, "-o", "json", "--show-managed-fields"
            ).stdout
        )
        managers = {m["manager"] for m in got["metadata"].get("managedFields") or []}
        assert FIELD_MANAGER in managers, obj["kind"]
    # Applying the kustomize base over it is a no-op for everything but the chart's own labels.
    apply(cluster, base, tmp_path)

    # The HA variant: kopf's ClusterKopfPeering CRD from the component, then both renderings of peering.
    peering = REPO / "deploy" / "kustomize" / "components" / "peering" / "clusterkopfpeering-crd.yaml"
    cluster.install_crd(peering, "clusterkopfpeerings.kopf.dev")
    ha_chart = helm_template(
        cluster, "--set", "peering.enabled=true", "--api-versions", "kopf.dev/v1/ClusterKopfPeering"
    )
    ha_kustomize = kustomize(cluster, REPO / "deploy" / "kustomize" / "overlays" / "eks-ha")
    for objects in (ha_chart, ha_kustomize):
        out = apply(cluster, objects, tmp_path, "--dry-run=server")
        assert "clusterkopfpeering.kopf.dev/warmpool serverside-applied (server dry run)" in out, out


def token_kubeconfig(cluster: DevCluster, path: Path) -> Path:
    """A kubeconfig with a real TokenRequest token for the ServiceAccount the manifests create."""
    assert cluster.state is not None
    token = cluster.kubectl("create", "token", NAME, "-n", NAMESPACE, "--duration=1h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "dev", "cluster": {"server": cluster.state.server, "certificate-authority": cluster.state.ca_file}}
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "dev", "user": "sa"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def sa_kubeconfig(cluster: DevCluster, chart: list[dict[str, Any]], tmp_path: Path) -> Path:
    apply(cluster, chart, tmp_path)
    return token_kubeconfig(cluster, tmp_path / "sa.kubeconfig")


USER = f"system:serviceaccount:{NAMESPACE}:{NAME}"


def test_can_i_matrix(cluster: DevCluster, sa_kubeconfig: Path, admin_api: client.ApiClient) -> None:
    """`kubectl auth can-i --as` the operator's identity: exactly the work it does, nothing around it."""
    policy = "warmpoolpolicies.warmpool.io"
    allowed = [
        ("list", "pods", "--all-namespaces"),
        ("watch", "pods", "--all-namespaces"),
        ("list", "nodes"),
        ("watch", "nodes"),
        ("list", policy),
        ("watch", policy),
        ("patch", f"{policy}/x"),  # kopf's finalizer and annotations (the spec is guarded by admission)
        ("patch", f"{policy}/x", "--subresource=status"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("get", "daemonsets.apps/aws-node", "-n", NAMESPACE),
        ("patch", "daemonsets.apps/aws-node", "-n", NAMESPACE),
        ("create", "events", "-n", "default"),
        ("get", "pods/x", "-n", NAMESPACE, "--subresource=proxy"),  # ipamd's metrics, through the pod proxy
    ]
    denied = [
        ("patch", "daemonsets.apps/aws-node", "-n", "default"),  # aws-node outside the targets' namespaces
        ("patch", "daemonsets.apps/kube-proxy", "-n", NAMESPACE),
        ("get", "daemonsets.apps/kube-proxy", "-n", NAMESPACE),
        ("list", "daemonsets.apps", "-n", NAMESPACE),
        ("watch", "daemonsets.apps", "--all-namespaces"),
        ("update", "daemonsets.apps/aws-node", "-n", NAMESPACE),
        ("delete", "daemonsets.apps/aws-node", "-n", NAMESPACE),
        ("create", "daemonsets.apps", "-n", NAMESPACE),
        ("patch", "daemonsets.apps/aws-node", "-n", NAMESPACE, "--subresource=status"),
        ("create", policy),
        ("delete", f"{policy}/x"),
        ("update", f"{policy}/x"),
        ("update", f"{policy}/x", "--subresource=status"),
        ("create", "events", "-n", NAMESPACE),
        ("patch", "events", "-n", "default"),
        ("create", "events.events.k8s.io", "-n", "default"),
        ("get", "pods", "-n", NAMESPACE),
        ("patch", "pods", "-n", NAMESPACE),
        ("patch", "nodes"),
        ("get", "secrets", "-n", NAMESPACE),
        ("list", "configmaps", "-n", NAMESPACE),
        ("patch", "clusterkopfpeerings.kopf.dev/warmpool"),  # only with peering on
        ("create", "serviceaccounts/token", "-n", NAMESPACE),
        ("get", "pods/x", "-n", "default", "--subresource=proxy"),  # the pod proxy outside the targets' namespaces
        ("create", "pods/x", "-n", NAMESPACE, "--subresource=proxy"),  # GET only
    ]

    def can_i(args: tuple[str, ...]) -> str:
        result = cluster.kubectl("auth", "can-i", *args, f"--as={USER}", check=False)
        return result.stdout.strip()

    assert [a for a in allowed if can_i(a) != "yes"] == []
    assert [a for a in denied if can_i(a) != "no"] == []

    # ENIConfigs (custom networking's CRD is not installed here, so kubectl cannot resolve the name): ask the
    # authorizer directly with a SubjectAccessReview.
    def review(verb: str) -> bool:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": USER,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"],
                "resourceAttributes": {"group": "crd.k8s.amazonaws.com", "resource": "eniconfigs", "verb": verb},
            },
        }
        answer = client.AuthorizationV1Api(admin_api).create_subject_access_review(body)
        return bool(answer.status.allowed)

    assert [review(verb) for verb in ("list", "watch", "get", "patch")] == [True, False, False, False]


def api_env(ds: Any) -> dict[str, str]:
    return {e.name: e.value for e in ds.spec.template.spec.containers[0].env or []}


def test_service_account_token_real_attempts(
    cluster: DevCluster, sa_kubeconfig: Path, admin_api: client.ApiClient, namespace: str
) -> None:
    """The same limits, with a real TokenRequest token: each allowed call goes through, each denied one is 403
    and leaves the object untouched. `namespace` is a policy target (the fixture grants the target Role there)."""
    assert cluster.state is not None

    def as_sa(*args: str) -> subprocess.CompletedProcess[str]:
        return run_kubectl(cluster.state, *args, kubeconfig=str(sa_kubeconfig), check=False)  # type: ignore[arg-type]

    def forbidden(result: subprocess.CompletedProcess[str], what: str) -> None:
        assert result.returncode != 0, what
        assert "Forbidden" in result.stderr, (what, result.stderr)

    whoami = as_sa("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == USER

    apps = client.AppsV1Api(admin_api)
    apps.create_namespaced_daemon_set(namespace, aws_node_daemonset(namespace))
    kube_proxy = aws_node_daemonset(namespace)
    kube_proxy["metadata"]["name"] = "kube-proxy"
    apps.create_namespaced_daemon_set(namespace, kube_proxy)
    elsewhere = unique("t")
    ensure_namespace(client.CoreV1Api(admin_api), elsewhere)  # not a target: no Role for the operator there
    apps.create_namespaced_daemon_set(elsewhere, aws_node_daemonset(elsewhere))

    listed = as_sa("get", "pods", "--all-namespaces", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert as_sa("get", "nodes", "-o", "name").returncode == 0
    got = as_sa("get", "daemonset", "aws-node", "-n", namespace, "-o", "name")
    assert got.stdout.strip() == "daemonset.apps/aws-node", got.stderr

    # Direct API calls with the token (kubectl patch would GET first and test that instead).
    sa_apps = client.AppsV1Api(config.new_client_from_config(config_file=str(sa_kubeconfig)))
    sa_objects = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sa_kubeconfig)))

    def refused(call: Callable[[], object], *expected: str) -> None:
        with pytest.raises(client.ApiException) as caught:
            call()
        assert caught.value.status == 403, caught.value.body
        for text in expected:
            assert text in caught.value.body, (text, caught.value.body)

    # The operator's work on its target: a warm-pool env entry of the aws-node container.
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "aws-node", "env": [{"name": "WARM_IP_TARGET", "value": "5"}]}]}
            }
        }
    }
    sa_apps.patch_namespaced_daemon_set("aws-node", namespace, patch)
    assert container_env(read_aws_node(admin_api, namespace))["WARM_IP_TARGET"] == "5"

    # Another DaemonSet in the target's namespace, aws-node outside it, listing: all 403 from RBAC, unchanged.
    refused(
        lambda: sa_apps.patch_namespaced_daemon_set("kube-proxy", namespace, patch),
        'cannot patch resource \\"daemonsets\\"',
    )
    refused(
        lambda: sa_apps.patch_namespaced_daemon_set("aws-node", elsewhere, patch),
        'cannot patch resource \\"daemonsets\\"',
    )
    for name, ns in (("kube-proxy", namespace), ("aws-node", elsewhere)):
        ds = apps.read_namespaced_daemon_set(name, ns)
        assert api_env(ds).get("WARM_IP_TARGET") != "5", (ns, name)
    forbidden(as_sa("get", "daemonset", "kube-proxy", "-n", namespace), "get kube-proxy")
    forbidden(as_sa("get", "daemonsets", "-n", namespace), "list daemonsets")
    forbidden(as_sa("get", "daemonsets", "--all-namespaces"), "list all daemonsets")
    # Not even aws-node by a verb other than get and patch; and server-side apply cannot create one.
    for verb_args in (("delete", "daemonset", "aws-node"), ("scale", "daemonset", "aws-node", "--replicas=0")):
        forbidden(as_sa(*verb_args, "-n", namespace), " ".join(verb_args))
    refused(lambda: sa_apps.delete_namespaced_daemon_set("aws-node", namespace), "cannot delete")
    absent = unique("t")
    ensure_namespace(client.CoreV1Api(admin_api), absent)
    grant_target(admin_api, absent)  # patch on aws-node there is granted; creating it through apply is not
    refused(
        lambda: sa_apps.patch_namespaced_daemon_set(
            "aws-node",
            absent,
            aws_node_daemonset(absent),
            field_manager="warmpool",
            _content_type="application/apply-patch+yaml",
        ),
        "cannot create resource",
    )

    # Policies: status yes, spec no (RBAC must allow patch for kopf's finalizer; admission refuses the spec).
    policy = unique("deploy-rbac")
    create_policy(admin_api, policy, fast_spec(namespace, "ng"))
    group = (v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, policy)
    sa_objects.patch_cluster_custom_object_status(*group, {"status": {"mode": "Prefix"}})
    refused(
        lambda: sa_objects.patch_cluster_custom_object(*group, {"spec": {"dryRun": False}}),
        "ValidatingAdmissionPolicy 'warmpool-operator-policy-spec'",
        "not spec",
    )
    refused(lambda: sa_objects.delete_cluster_custom_object(*group), "cannot delete")
    body = client.CustomObjectsApi(admin_api).get_cluster_custom_object(*group)
    assert (body["spec"]["dryRun"], body["status"]["mode"]) == (True, "Prefix")
    client.CustomObjectsApi(admin_api).delete_cluster_custom_object(*group)

    # Events: create in `default` only.
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "deploy-test."},
        "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
        "type": "Normal",
        "reason": "DeployTest",
        "message": "posted by the operator's identity",
    }
    manifest = sa_kubeconfig.parent / "event.json"
    manifest.write_text(json.dumps(event))
    created = as_sa("create", "-n", "default", "-f", str(manifest), "-o", "name")
    assert created.returncode == 0, created.stderr
    forbidden(as_sa("create", "-n", namespace, "-f", str(manifest)), "event elsewhere")

    forbidden(as_sa("get", "secrets", "-n", NAMESPACE), "secrets")
    forbidden(as_sa("get", "configmaps", "-n", NAMESPACE), "configmaps")


def test_operator_serves_a_policy_with_the_service_account_token(
    cluster: DevCluster, sa_kubeconfig: Path, admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2
) -> None:
    core = client.CoreV1Api(admin_api)
    create_aws_node(admin_api, namespace)
    group = unique("ng")
    eks_nodes(core, moto_ec2, group, 2)
    policy = unique("deploy")
    create_policy(admin_api, policy, fast_spec(namespace, group))
    operator = OperatorProcess(
        str(sa_kubeconfig),
        env={"WARMPOOL_EC2_ENDPOINT_URL": moto_ec2.endpoint_url, "WARMPOOL_AWS_REGION": "us-east-1"},
    )
    with operator:
        status = wait_status(
            admin_api,
            policy,
            operator,
            "a plan by the operator running on the ServiceAccount token",
            lambda s: s.get("nodes") == 2 and condition(s, "Ready").get("status") == "True",
        )
        assert status["recommended"]["WARM_IP_TARGET"]["value"] >= 1
        # No refusal of any kind: kopf says "Code: 403", the kubernetes client "(403)" and "Forbidden", the
        # API server "is forbidden".
        logs = operator.logs()
        for refusal in ("Code: 403", "(403)", "Forbidden", "forbidden"):
            assert refusal not in logs, refusal


def test_operator_runs_with_peering_under_the_peering_rbac(
    cluster: DevCluster, admin_api: client.ApiClient, namespace: str, moto_ec2: MotoEc2
) -> None:
    """Hot standby: with the peering component's RBAC (list/watch of ClusterKopfPeerings, patch of its own by
    name), kopf keeps its heartbeat in the peering object and the operator serves policies, refused nothing."""
    assert cluster.state is not None
    peering = REPO / "deploy" / "kustomize" / "components" / "peering"
    cluster.install_crd(peering / "clusterkopfpeering-crd.yaml", "clusterkopfpeerings.kopf.dev")
    objects = _docs((peering / "rbac.yaml").read_text()) + _docs((peering / "clusterkopfpeering.yaml").read_text())
    apply(cluster, objects, Path(cluster.state.workdir))
    core = client.CoreV1Api(admin_api)
    create_aws_node(admin_api, namespace)
    group = unique("ng")
    eks_nodes(core, moto_ec2, group, 2)
    policy = unique("peering")
    create_policy(admin_api, policy, fast_spec(namespace, group))
    operator = OperatorProcess(
        cluster.state.operator_kubeconfig,
        env={
            "WARMPOOL_EC2_ENDPOINT_URL": moto_ec2.endpoint_url,
            "WARMPOOL_AWS_REGION": "us-east-1",
            "WARMPOOL_PEERING": "warmpool",
        },
    )
    with operator:
        wait_status(
            admin_api,
            policy,
            operator,
            "a plan by the operator holding the peering",
            lambda s: s.get("nodes") == 2 and condition(s, "Ready").get("status") == "True",
        )
        heartbeats = client.CustomObjectsApi(admin_api).get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", "warmpool"
        )["status"]
        assert [peer["priority"] > 0 for peer in heartbeats.values() if peer] == [True]
        # Deleted while the operator runs, so kopf takes its finalizer off (patch of the policy, admitted).
        objects = client.CustomObjectsApi(admin_api)
        objects.delete_cluster_custom_object(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, policy)
        wait_for(lambda: not _policy_exists(admin_api, policy), "kopf to release the deleted policy")
        logs = operator.logs()
        for refusal in ("Code: 403", "(403)", "Forbidden", "forbidden"):
            assert refusal not in logs, refusal


def _policy_exists(api: client.ApiClient, name: str) -> bool:
    try:
        client.CustomObjectsApi(api).get_cluster_custom_object(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
