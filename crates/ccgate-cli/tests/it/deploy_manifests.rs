//! `deploy/kubernetes/`: every manifest parses into its Kubernetes type
//! (k8s-openapi, Kubernetes 1.33), the permissions are only get, list and
//! watch on Middlewares and Secrets, the Deployment is hardened and
//! probed, every ccgate.yaml of a ConfigMap passes `ccgate check`, and
//! every ccgate Middleware reads as the file provider reads it.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

use crate::support::ConfigDir;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every YAML file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("deploy/kubernetes") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn typed<T: serde::de::DeserializeOwned>(document: &Value, file: &Path) -> T {
    serde_json::from_value(document.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: {} does not parse: {e}",
            file.display(),
            document["kind"]
        )
    })
}

fn check_rules(rules: &[PolicyRule], file: &Path) {
    assert!(!rules.is_empty(), "{}", file.display());
    for rule in rules {
        assert_eq!(rule.verbs, ["get", "list", "watch"], "{}", file.display());
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        match resources.as_slice() {
            [r] if r == "middlewares" => assert_eq!(groups, ["traefik.io", "traefik.containo.us"]),
            [r] if r == "secrets" => assert_eq!(groups, [""]),
            other => panic!("{}: a rule on {other:?}", file.display()),
        }
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
    }
}

fn check_deployment(deployment: &Deployment) {
    let pod = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("ccgate"));
    let security = pod.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert!(security.run_as_user.is_some_and(|uid| uid != 0));
    let [container] = pod.containers.as_slice() else {
        panic!("one container")
    };
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    for probe in [&container.readiness_probe, &container.liveness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/ping"));
    }
    let requests = container
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
}

#[test]
fn deploy_manifests_parse_into_kubernetes_types_and_pass_ccgate_check() {
    let mut kinds = Vec::new();
    for file in files(&deploy_dir()) {
        let text = std::fs::read_to_string(&file).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for document in documents {
            let kind = document["kind"].as_str().expect("kind").to_owned();
            match kind.as_str() {
                "Namespace" => {
                    typed::<Namespace>(&document, &file);
                }
                "ServiceAccount" => {
                    typed::<ServiceAccount>(&document, &file);
                }
                "ClusterRole" => check_rules(
                    &typed::<ClusterRole>(&document, &file).rules.unwrap(),
                    &file,
                ),
                "Role" => check_rules(&typed::<Role>(&document, &file).rules.unwrap(), &file),
                "ClusterRoleBinding" => {
                    typed::<ClusterRoleBinding>(&document, &file);
                }
                "RoleBinding" => {
                    typed::<RoleBinding>(&document, &file);
                }
                "Deployment" => check_deployment(&typed::<Deployment>(&document, &file)),
                "Service" => {
                    typed::<Service>(&document, &file);
                }
                "Secret" => {
                    typed::<Secret>(&document, &file);
                }
                "Ingress" => {
                    let ingress: Ingress = typed(&document, &file);
                    let annotations = ingress.metadata.annotations.unwrap();
                    assert!(
                        annotations["nginx.ingress.kubernetes.io/auth-url"]
                            .ends_with(":9091/apps/cc")
                    );
                }
                "ConfigMap" => {
                    let config_map: ConfigMap = typed(&document, &file);
                    let text = &config_map.data.unwrap()["ccgate.yaml"];
                    let summary = ConfigDir::new(&[("ccgate.yaml", text.as_str())]).valid();
                    assert!(
                        summary.contains("kubernetes provider: namespaces "),
                        "{summary}"
                    );
                }
                "Middleware" | "IngressRoute" => {
                    assert_eq!(
                        document["apiVersion"],
                        "traefik.io/v1alpha1",
                        "{}",
                        file.display()
                    );
                    if document["spec"]["plugin"]["oAuthClientCredentials"].is_object() {
                        // As the file provider reads it (with a Secret for its URNs).
                        let dir = ConfigDir::new(&[(
                            "ccgate.yaml",
                            &format!(
                                "entryPoints: {{web: {{address: ':1'}}}}\n---\n{}\n---\n{}\n",
                                serde_json::to_string(&document).unwrap(),
                                "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"cc-credentials\", \"namespace\": \"apps\"}, \"stringData\": {\"clientID\": \"id\", \"clientSecret\": \"s\"}}"
                            ),
                        )]);
                        dir.valid();
                    }
                }
                other => panic!("{}: unexpected kind {other}", file.display()),
            }
            kinds.push(kind);
        }
    }
    for wanted in [
        "ServiceAccount",
        "ClusterRole",
        "Role",
        "Deployment",
        "Service",
        "ConfigMap",
        "Ingress",
        "IngressRoute",
        "Middleware",
    ] {
        assert!(
            kinds.iter().any(|k| k == wanted),
            "no {wanted} in deploy/kubernetes: {kinds:?}"
        );
    }
}
