//! `manifests/`, checked without a cluster: every document parses strictly into its
//! Kubernetes type, the CRDs are the generated ones in a kustomization of their own
//! (applied first) that holds every kind the other one uses, every image is named
//! once in `images:` as `scripts/images` builds it, each component's RBAC grants
//! exactly the calls listed next to its code (and the code, run against the API
//! double, makes only those), and the pods run what their images install with the
//! configuration their binaries read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use api::datastore::Datastore;
use api::resources::{IPPool, IPPoolSpec};
use clap::CommandFactory;
use harness::kube_api::KubeApi;
use harness::kube_api::calls::{Call, calls_of};
use harness::manifests::install::{self, InstallCni};
use harness::manifests::rbac::Grant;
use harness::manifests::strict::{check, parse};
use harness::manifests::{self, Document, documents, find};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::Value;

const NAMESPACE: &str = "tabby-system";

fn all() -> Vec<Document> {
    documents().expect("manifests/ reads")
}

fn typed<K: serde::de::DeserializeOwned + serde::Serialize>(
    documents: &[Document],
    kind: &str,
    name: &str,
) -> K {
    let document = find(documents, kind, name).unwrap();
    parse(&document.value).unwrap_or_else(|e| panic!("{}: {e}", document.place()))
}

fn pod_spec(documents: &[Document], kind: &str, name: &str) -> PodSpec {
    let template = match kind {
        "DaemonSet" => {
            typed::<DaemonSet>(documents, kind, name)
                .spec
                .unwrap()
                .template
        }
        _ => {
            typed::<Deployment>(documents, kind, name)
                .spec
                .unwrap()
                .template
        }
    };
    template.spec.unwrap()
}

fn env(container: &Container) -> BTreeMap<String, Option<String>> {
    container
        .env
        .iter()
        .flatten()
        .map(|var| (var.name.clone(), var.value.clone()))
        .collect()
}

#[test]
fn manifests_every_document_parses_strictly_into_its_kubernetes_type() {
    let mut problems = Vec::new();
    for file in manifests::yaml_files().unwrap() {
        for document in manifests::read(&file).unwrap() {
            if let Err(problem) = check(&document) {
                problems.push(format!("{}: {problem}", document.place()));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn manifests_a_misspelt_field_is_an_error_that_names_its_path() {
    let mut daemonset = find(&all(), "DaemonSet", "tabby-agent").unwrap().clone();
    let spec = daemonset.value.pointer_mut("/spec/template/spec").unwrap();
    spec["hostNetwrok"] = Value::Bool(true);
    assert_eq!(
        check(&daemonset).unwrap_err(),
        ".spec.template.spec.hostNetwrok: unknown field"
    );
}

#[test]
fn manifests_the_kustomizations_install_every_yaml_file_once_and_name_each_object_once() {
    let listed: Vec<String> = manifests::KUSTOMIZATIONS
        .into_iter()
        .flat_map(|folder| manifests::kustomization(folder).unwrap().files(folder))
        .collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a file listed twice: {listed:?}"
    );
    let files: BTreeSet<String> = manifests::yaml_files().unwrap().into_iter().collect();
    assert_eq!(files, listed.into_iter().collect::<BTreeSet<_>>());

    let mut seen = BTreeSet::new();
    for document in all() {
        let key = (
            document.kind().to_owned(),
            document.namespace().to_owned(),
            document.name().to_owned(),
        );
        assert!(seen.insert(key), "{} twice", document.place());
    }
}

#[test]
fn manifests_namespaced_objects_live_in_tabby_system_and_cluster_scoped_ones_in_none() {
    let cluster_scoped = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "IPPool",
        "BGPConfiguration",
    ];
    for document in all() {
        let expected = match cluster_scoped.contains(&document.kind()) {
            true => "",
            false => NAMESPACE,
        };
        assert_eq!(document.namespace(), expected, "{}", document.place());
    }
}

#[test]
fn manifests_the_crds_are_the_ones_generated_from_the_rust_types() {
    let installed: Vec<Value> = manifests::documents_of(manifests::CRDS)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect();
    assert!(
        installed == api::crd::definitions(),
        "manifests/crds/ is stale: run `cargo run -p api --bin crdgen`"
    );
    let kinds: BTreeSet<&str> = installed
        .iter()
        .filter_map(|crd| crd["spec"]["names"]["kind"].as_str())
        .collect();
    for kind in [
        "IPPool",
        "BGPConfiguration",
        "IPAMBlock",
        "BlockAffinity",
        "Node",
    ] {
        assert!(kinds.contains(kind), "no CRD for {kind}: {kinds:?}");
    }
}

/// CRDs by name, as `kubectl kustomize` renders `folder`.
fn rendered_crds(folder: &str) -> BTreeMap<String, Value> {
    manifests::render(folder)
        .unwrap()
        .into_iter()
        .filter(|object| object["kind"] == "CustomResourceDefinition")
        .map(|crd| (crd["metadata"]["name"].as_str().unwrap().to_owned(), crd))
        .collect()
}

#[test]
fn manifests_the_top_level_kustomization_renders_no_custom_resource_definition() {
    let rendered = manifests::render(manifests::TOP).unwrap();
    // What kubectl renders is what these tests read from the files.
    let objects = |values: Vec<Value>| -> BTreeSet<(String, String)> {
        values
            .into_iter()
            .map(|v| {
                let text = |pointer: &str| v.pointer(pointer).unwrap().as_str().unwrap().to_owned();
                (text("/kind"), text("/metadata/name"))
            })
            .collect()
    };
    let read = manifests::documents_of(manifests::TOP).unwrap();
    assert_eq!(
        objects(rendered.clone()),
        objects(read.into_iter().map(|d| d.value).collect())
    );
    assert!(
        rendered_crds(manifests::TOP).is_empty(),
        "CRDs belong in manifests/crds, applied first"
    );
}

#[test]
fn manifests_the_crds_kustomization_renders_exactly_the_crds_the_code_defines() {
    let defined: BTreeMap<String, Value> = api::crd::definitions()
        .into_iter()
        .map(|crd| (crd["metadata"]["name"].as_str().unwrap().to_owned(), crd))
        .collect();
    let rendered = manifests::render(manifests::CRDS).unwrap();
    assert_eq!(rendered.len(), defined.len(), "only CRDs in manifests/crds");
    assert!(
        rendered_crds(manifests::CRDS) == defined,
        "kubectl kustomize manifests/crds is not the generated CRDs: run `cargo run -p api --bin crdgen`"
    );
}

/// The groups of Kubernetes' own kinds: every other group is a custom resource's.
fn built_in(group: &str) -> bool {
    ["", "apps", "batch", "policy", "autoscaling"].contains(&group) || group.ends_with(".k8s.io")
}

#[test]
fn manifests_every_custom_resource_of_the_top_level_kustomization_has_its_crd_in_manifests_crds() {
    let crds = rendered_crds(manifests::CRDS);
    let mut custom = BTreeSet::new();
    for object in manifests::render(manifests::TOP).unwrap() {
        let api_version = object["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = object["kind"].as_str().unwrap();
        if built_in(group) {
            continue;
        }
        let served = crds.values().any(|crd| {
            crd["spec"]["group"] == group
                && crd["spec"]["names"]["kind"] == kind
                && crd["spec"]["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["name"] == version && v["served"] == true)
        });
        assert!(
            served,
            "{api_version} {kind}: no CRD in manifests/crds serves it"
        );
        custom.insert(kind.to_owned());
    }
    // The default pool comes from the agent's environment, not a resource.
    assert_eq!(custom, BTreeSet::from(["BGPConfiguration".to_owned()]));
}

/// Every container's and init container's image in rendered workloads, by
/// `Kind/name/container`.
fn container_images(objects: &[Value]) -> BTreeMap<String, String> {
    let mut images = BTreeMap::new();
    for object in objects {
        let Some(pod) = object.pointer("/spec/template/spec") else {
            continue;
        };
        for list in ["containers", "initContainers"] {
            for container in pod[list].as_array().into_iter().flatten() {
                let at = format!(
                    "{}/{}/{}",
                    object["kind"].as_str().unwrap(),
                    object["metadata"]["name"].as_str().unwrap(),
                    container["name"].as_str().unwrap()
                );
                images.insert(at, container["image"].as_str().unwrap().to_owned());
            }
        }
    }
    images
}

#[test]
fn manifests_every_container_image_is_named_once_in_the_images_block_of_the_kustomization() {
    let block = manifests::kustomization(manifests::TOP).unwrap().images;
    let short: BTreeSet<&str> = block.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(short.len(), block.len(), "an image twice: {block:?}");
    // The files name images by their short names only, so retagging is one edit.
    let files: Vec<Value> = manifests::documents_of(manifests::TOP)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect();
    let named = container_images(&files);
    assert!(!named.is_empty(), "no workload has a container");
    for (container, image) in &named {
        assert!(
            short.contains(image.as_str()),
            "{container}: {image} is not a short name of images: {short:?}"
        );
    }
    // kubectl replaces each with its newName:newTag, and every entry is used.
    let rendered = container_images(&manifests::render(manifests::TOP).unwrap());
    for (container, image) in &rendered {
        let entry = block.iter().find(|i| i.name == named[container]).unwrap();
        assert_eq!(image, &entry.reference(), "{container}");
    }
    let used: BTreeSet<&str> = named.values().map(String::as_str).collect();
    assert_eq!(used, short, "an images: entry no container uses");
}

#[test]
fn manifests_scripts_images_builds_exactly_the_images_the_kustomization_names() {
    let script = manifests::directory().join("../scripts/images");
    let mut list = std::process::Command::new(script);
    list.arg("--list").env_remove("REGISTRY");
    let built: BTreeSet<String> = harness::process::exec(&mut list)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let named: BTreeSet<String> = manifests::kustomization(manifests::TOP)
        .unwrap()
        .images
        .iter()
        .map(manifests::Image::reference)
        .collect();
    assert_eq!(built, named);
    // Tagged with the version the binaries print.
    for image in &built {
        assert!(
            image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
            "{image}"
        );
    }
}

/// What the ServiceAccount `account` of tabby's namespace is granted, cluster-wide
/// (`namespace` empty) and per namespace.
fn granted(documents: &[Document], account: &str) -> BTreeMap<String, BTreeSet<Grant>> {
    harness::manifests::rbac::granted(documents, NAMESPACE, account).unwrap()
}

/// Grants of every object of a resource, as calls.
fn unnamed(grants: &BTreeSet<Grant>) -> BTreeSet<Call> {
    grants
        .iter()
        .map(|grant| {
            assert!(grant.names.is_empty(), "{grant:?} limited to names");
            grant.call.clone()
        })
        .collect()
}

fn differences(granted: &BTreeSet<Call>, listed: &BTreeSet<Call>) -> String {
    let show = |calls: BTreeSet<&Call>| calls.iter().map(ToString::to_string).collect::<Vec<_>>();
    format!(
        "granted but never made: {:?}; made but not granted: {:?}",
        show(granted.difference(listed).collect()),
        show(listed.difference(granted).collect())
    )
}

#[test]
fn manifests_each_component_is_granted_exactly_the_calls_listed_next_to_its_code() {
    let documents = all();
    let components: [(&str, &[&[api::rbac::ApiCall]]); 3] = [
        (
            "tabby-agent",
            &[agent::rbac::AGENT, cni::rbac::CNI, ipam::rbac::PLUGIN],
        ),
        ("tabby-ipam-controller", &[ipam::rbac::CONTROLLER]),
        ("tabby-reflector", &[reflector::rbac::REFLECTOR]),
    ];
    for (account, lists) in components {
        let mut by_namespace = granted(&documents, account);
        let cluster = unnamed(&by_namespace.remove("").unwrap_or_default());
        let listed = calls_of(lists);
        assert!(
            cluster == listed,
            "{account}: {}",
            differences(&cluster, &listed)
        );
        if account != "tabby-agent" {
            assert!(
                by_namespace.is_empty(),
                "{account}: namespaced grants {by_namespace:?}"
            );
        }
    }
}

#[test]
fn manifests_the_agent_reads_one_secret_for_bgp_passwords_by_name_and_no_other() {
    let mut by_namespace = granted(&all(), "tabby-agent");
    by_namespace.remove("");
    let secrets = by_namespace.remove(NAMESPACE).unwrap_or_default();
    assert!(
        by_namespace.is_empty(),
        "grants elsewhere: {by_namespace:?}"
    );
    let listed = calls_of(&[agent::rbac::BGP_PASSWORD_SECRETS]);
    let calls: BTreeSet<Call> = secrets.iter().map(|g| g.call.clone()).collect();
    assert_eq!(calls, listed);
    for grant in secrets {
        assert_eq!(
            grant.names,
            BTreeSet::from(["tabby-bgp-passwords".to_owned()]),
            "{grant:?}"
        );
    }
}

#[test]
fn install_the_agent_mounts_the_password_secret_where_it_reads_files_and_the_example_peer_uses_it()
{
    let spec = pod_spec(&all(), "DaemonSet", "tabby-agent");
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.secret
                .as_ref()
                .is_some_and(|s| s.secret_name.as_deref() == Some("tabby-bgp-passwords"))
        })
        .expect("a volume of the Secret tabby-bgp-passwords");
    // A cluster without passwords has no such Secret: the pod must start anyway.
    assert_eq!(volume.secret.as_ref().unwrap().optional, Some(true));
    let agent = spec
        .containers
        .iter()
        .find(|c| c.name == "tabby-agent")
        .unwrap();
    let dir = env(agent)
        .get("TABBY_BGP_PASSWORD_DIR")
        .cloned()
        .flatten()
        .unwrap_or_else(|| agent::peering::passwords::DEFAULT_DIR.to_owned());
    let mount = agent
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume.name)
        .expect("the password volume mounted in tabby-agent");
    assert_eq!(mount.mount_path, dir);
    assert_eq!(mount.read_only, Some(true));

    // The documented example reads a password the installed agent can read.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/bgppeer.yaml"),
    )
    .unwrap();
    let peers: Vec<api::resources::BGPPeer> = api::yaml::documents(&example).unwrap();
    let passwords: Vec<_> = peers
        .iter()
        .filter_map(|p| p.spec.password.clone())
        .collect();
    assert!(!passwords.is_empty(), "the example shows a password");
    let mut by_namespace = granted(&all(), "tabby-agent");
    let readable: BTreeSet<String> = by_namespace
        .remove(NAMESPACE)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|grant| grant.names)
        .collect();
    for password in passwords {
        match (&password.secret_key_ref, &password.file) {
            (Some(secret), _) => assert!(
                readable.contains(&secret.name),
                "{} is not a Secret the agent may read: {readable:?}",
                secret.name
            ),
            (None, Some(file)) => assert!(
                Path::new(file).starts_with(&dir),
                "{file} is outside {dir}, where the agent reads password files"
            ),
            (None, None) => unreachable!("validated"),
        }
    }
}

#[test]
fn install_the_agents_environment_makes_the_default_pool_calico_node_would() {
    let spec = pod_spec(&all(), "DaemonSet", "tabby-agent");
    let agent = spec
        .containers
        .iter()
        .find(|c| c.name == "tabby-agent")
        .unwrap();
    let variables = env(agent);
    let pools =
        agent::node::default_pools::from_env(&|name| variables.get(name).cloned().flatten())
            .unwrap();
    let [pool] = &pools[..] else {
        panic!("one IPv4 pool: {pools:?}")
    };
    assert_eq!(pool.metadata.name, "default-ipv4-ippool");
    assert_eq!(pool.spec.cidr.0.to_string(), "10.244.0.0/16");
    assert_eq!(pool.spec.block_size, Some(26));
    assert_eq!(
        pool.spec.ipip_mode,
        api::resources::EncapsulationMode::Never
    );
    assert_eq!(
        pool.spec.vxlan_mode,
        api::resources::EncapsulationMode::CrossSubnet
    );
    assert!(pool.spec.nat_outgoing);
}

fn assert_listed(api: &KubeApi, from: usize, lists: &[&[api::rbac::ApiCall]], who: &str) {
    let made = api.calls_since(from).unwrap();
    let listed = calls_of(lists);
    let unlisted: Vec<String> = made.difference(&listed).map(ToString::to_string).collect();
    assert!(
        unlisted.is_empty(),
        "{who} made calls its list lacks: {unlisted:?}"
    );
    assert!(!made.is_empty(), "{who} made no call at all");
}

fn pool() -> IPPool {
    IPPool::new(
        "default-ipv4-ippool",
        IPPoolSpec::new("10.244.0.0/16".parse().unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_the_agent_registering_and_following_the_cluster_makes_only_listed_calls() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    store.create(&pool()).await.unwrap();
    api.put_node("worker-1", &["192.0.2.10".parse().unwrap()])
        .await
        .unwrap();
    let from = api.requests().len();

    let identity = agent::node::register::Identity {
        name: "worker-1".into(),
        ipv4: Some("192.0.2.10/24".parse().unwrap()),
        ipv6: None,
        as_number: None,
        labels: BTreeMap::from([("rack".to_owned(), "a".to_owned())]),
    };
    agent::node::register::register(&*store, &identity)
        .await
        .unwrap();
    // A second start finds its Node and brings it up to date.
    let changed = agent::node::register::Identity {
        ipv4: Some("192.0.2.11/24".parse().unwrap()),
        ..identity
    };
    agent::node::register::register(&*store, &changed)
        .await
        .unwrap();
    // Ready, it clears the Kubernetes Node's NetworkUnavailable condition.
    store
        .inventory()
        .unwrap()
        .set_network("worker-1", &agent::daemon::network::UP)
        .await
        .unwrap();

    let (updates, mut received) = agent::daemon::watch::channel();
    let tasks = agent::daemon::watch::follow_all(store.clone(), updates);
    let mut view = Default::default();
    let mut listed = BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while listed.len() < tasks.len() {
            let update: agent::daemon::watch::Update = received.recv().await.unwrap();
            listed.extend(update.apply(&mut view));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the agent listed only {listed:?}"));
    // Every kind is listed; its watch follows right after its list.
    tokio::task::block_in_place(|| {
        harness::wait_until(Duration::from_secs(30), "the agent's watches", || {
            let calls = api.calls_since(from).map_err(anyhow::Error::msg)?;
            let watches = calls.iter().filter(|c| c.verb == api::rbac::Verb::Watch);
            anyhow::Ok(watches.count() >= tasks.len())
        })
    })
    .unwrap();
    for task in tasks {
        task.abort();
    }
    assert_listed(&api, from, &[agent::rbac::AGENT], "tabby-agent");

    // Its VXLAN tunnel address comes from IPAM, with IPAM's calls.
    let mut vxlan = pool();
    vxlan.spec.vxlan_mode = api::resources::EncapsulationMode::Always;
    let stored: IPPool = store.get(&vxlan.metadata.name).await.unwrap();
    vxlan.metadata = stored.metadata;
    store.update(&vxlan).await.unwrap();
    let from = api.requests().len();
    let allocator = ipam::Allocator::new(store.clone(), "worker-1");
    let address = allocator
        .ensure_tunnel_address(ipam::Tunnel::Vxlan, ipam::Family::V4)
        .await
        .unwrap();
    assert!(address.is_some());
    assert_listed(
        &api,
        from,
        &[agent::rbac::AGENT, ipam::rbac::PLUGIN],
        "tabby-agent's tunnel addresses",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_tabby_cni_recording_and_forgetting_a_pod_makes_only_listed_calls() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let from = api.requests().len();
    let endpoint = api::resources::WorkloadEndpointSpec {
        node: "worker-1".into(),
        namespace: "default".into(),
        pod: "web-0".into(),
        container_id: "ctr-1".into(),
        endpoint: "eth0".into(),
        interface_name: "cali0123456789a".into(),
        mac: None,
        ip_networks: vec!["10.244.0.5/32".parse().unwrap()],
    };
    store.register_workload(endpoint.clone()).await.unwrap();
    // A new container of the same pod replaces the endpoint.
    let again = api::resources::WorkloadEndpointSpec {
        container_id: "ctr-2".into(),
        ..endpoint
    };
    store.register_workload(again).await.unwrap();
    let removed = store
        .unregister_workload("default", "web-0", "ctr-2")
        .await
        .unwrap();
    assert!(removed.is_some());
    assert_listed(&api, from, &[cni::rbac::CNI], "tabby-cni");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_tabby_ipam_assigning_and_releasing_makes_only_listed_calls() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    store.create(&pool()).await.unwrap();
    let from = api.requests().len();

    let allocator = ipam::assign::Allocator::new(store.clone(), "worker-1");
    let request = ipam::assign::AssignRequest::new("k8s-pod-network.ctr-1", 1, 0);
    let assigned = allocator.auto_assign(&request).await.unwrap();
    assert_eq!(assigned.addresses.len(), 1, "{assigned:?}");
    allocator
        .release_handle("k8s-pod-network.ctr-1")
        .await
        .unwrap();
    allocator.release_empty_blocks().await.unwrap();

    assert_listed(&api, from, &[ipam::rbac::PLUGIN], "tabby-ipam");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_the_ipam_controller_reclaiming_a_gone_pods_address_makes_only_listed_calls() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    store.create(&pool()).await.unwrap();
    let allocator = ipam::assign::Allocator::new(store.clone(), "worker-1");
    let mut request = ipam::assign::AssignRequest::new("k8s-pod-network.ctr-gone", 1, 0);
    request.attrs = BTreeMap::from([
        (
            ipam::table::attr::NAMESPACE.to_owned(),
            "default".to_owned(),
        ),
        (ipam::table::attr::POD.to_owned(), "gone".to_owned()),
        (ipam::table::attr::NODE.to_owned(), "worker-1".to_owned()),
    ]);
    allocator.auto_assign(&request).await.unwrap();
    let from = api.requests().len();

    let mut collector = ipam::gc::Collector::new(store.clone(), Duration::ZERO);
    let mut reclaimed = Vec::new();
    // The first pass sees what is reclaimable; a later one reclaims it.
    for _ in 0..3 {
        let report = collector.run_once(Instant::now()).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        reclaimed.extend(report.reclaimed);
    }
    assert!(!reclaimed.is_empty(), "the controller reclaimed nothing");

    assert_listed(
        &api,
        from,
        &[ipam::rbac::CONTROLLER],
        "tabby-ipam-controller",
    );
}

/// The conflist as tabby-install-cni writes it on node `node`.
fn conflist(node: &str) -> Value {
    let text = install::template()
        .unwrap()
        .replace("__KUBERNETES_NODE_NAME__", node)
        .replace("__KUBECONFIG_FILEPATH__", "/etc/cni/net.d/tabby/kubeconfig");
    serde_json::from_str(&text).unwrap()
}

/// What the runtime hands each plugin of the installed conflist on `worker-1`.
fn plugin_configs() -> Vec<Value> {
    harness::manifests::cni::plugin_configs(&conflist("worker-1")).unwrap()
}

/// What the runtime hands tabby-cni (and it tabby-ipam) on `worker-1`.
fn plugin_stdin() -> Vec<u8> {
    let tabby = &plugin_configs()[0];
    assert_eq!(tabby["type"], "tabby-cni");
    serde_json::to_vec(tabby).unwrap()
}

#[test]
fn manifests_the_cni_config_gives_tabby_ipam_the_kubernetes_datastore_and_the_node() {
    let ipam = cni::ipam_plugin::config::IpamNetConf::parse(&plugin_stdin()).unwrap();
    assert_eq!(ipam.net.node(&|_| None).unwrap(), "worker-1");
    let api::datastore::DatastoreConfig::Kubernetes(kubernetes) = ipam.datastore else {
        panic!("not kubernetes: {:?}", ipam.datastore);
    };
    assert_eq!(
        kubernetes.kubeconfig,
        api::datastore::config::Kubeconfigs::Named("/etc/cni/net.d/tabby/kubeconfig".into())
    );
    assert_eq!(kubernetes.api_endpoint, None);
    assert!(ipam.ipam.assign_ipv4 && !ipam.ipam.assign_ipv6);
    assert!(
        ipam.net.warnings.is_empty(),
        "the conflist uses no old spelling: {:?}",
        ipam.net.warnings
    );
}

#[test]
fn manifests_the_cni_config_gives_tabby_cni_a_config_it_accepts() {
    let conf = cni::spec::config::NetConf::parse(&plugin_stdin()).unwrap();
    assert_eq!(conf.ipam_plugin, "tabby-ipam");
    // tabby-cni records the pod where tabby-ipam assigns its address.
    assert!(conf.has_datastore());
    assert_eq!(conf.node(&|_| None).unwrap(), "worker-1");
    let ipam = cni::ipam_plugin::config::IpamNetConf::parse(&plugin_stdin()).unwrap();
    assert_eq!(
        format!("{:?}", conf.datastore_config().unwrap()),
        format!("{:?}", ipam.datastore)
    );
}

#[test]
fn manifests_the_cni_config_chains_portmap_for_host_ports_as_calico_does() {
    let plugins = plugin_configs();
    assert_eq!(plugins.len(), 2, "{plugins:#?}");
    assert_eq!(
        plugins[1],
        serde_json::json!({
            "type": "portmap",
            "snat": true,
            "capabilities": {"portMappings": true},
            "name": "k8s-pod-network",
            "cniVersion": "1.0.0",
        })
    );
}

/// The image's tabby-install-cni with the host's directories in `root` (and the
/// plugins seeing them at their usual places).
fn installer(root: &Path) -> InstallCni {
    InstallCni {
        node: "worker-1".into(),
        plugin_dir: root.join("image/plugins"),
        service_account_dir: root.join("image/serviceaccount"),
        template: root.join("image/10-tabby.conflist"),
        cni_bin_dir: root.join("host/opt/cni/bin"),
        cni_net_dir: root.join("host/etc/cni/net.d"),
        cni_net_dir_on_host: "/etc/cni/net.d".into(),
    }
}

#[test]
fn manifests_tabby_install_cni_installs_the_plugins_the_conflist_and_a_kubeconfig() {
    let root = tempfile::tempdir().unwrap();
    let at = |path: &str| root.path().join(path);
    std::fs::create_dir(at("built")).unwrap();
    for plugin in ["tabby-cni", "tabby-ipam"] {
        std::fs::write(at(&format!("built/{plugin}")), format!("#!{plugin}")).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(at(&format!("built/{plugin}")), mode).unwrap();
    }
    let install = installer(root.path());
    install
        .stage(&[&at("built/tabby-cni"), &at("built/tabby-ipam")])
        .unwrap();

    let output = install.command(&[]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    for plugin in ["tabby-cni", "tabby-ipam"] {
        let installed = std::fs::read_to_string(at(&format!("host/opt/cni/bin/{plugin}"))).unwrap();
        assert_eq!(installed, format!("#!{plugin}"));
    }
    // The node has no standard plugins: portmap, which the conflist chains, is named.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("portmap is missing"), "{stderr}");
    let written = std::fs::read_to_string(at("host/etc/cni/net.d/10-tabby.conflist")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&written).unwrap(),
        conflist("worker-1")
    );
    let kubeconfig = std::fs::read_to_string(at("host/etc/cni/net.d/tabby/kubeconfig")).unwrap();
    assert!(
        kubeconfig.contains("server: https://10.96.0.1:443"),
        "{kubeconfig}"
    );
    assert!(
        kubeconfig.contains("tokenFile: /etc/cni/net.d/tabby/token"),
        "{kubeconfig}"
    );
    let token = std::fs::read_to_string(at("host/etc/cni/net.d/tabby/token")).unwrap();
    assert_eq!(token, "token-1");
    let leftovers: Vec<_> = walk(root.path())
        .into_iter()
        .filter(|p| p.ends_with(".tabby-new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Without the plugins in the image it says which is missing.
    std::fs::remove_file(at("image/plugins/tabby-ipam")).unwrap();
    let output = install.command(&[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tabby-ipam is missing from the image"),
        "{stderr}"
    );
    let output = install.command(&["--bogus"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown argument \"--bogus\""));
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => found.extend(walk(&path)),
            false => found.push(path.display().to_string()),
        }
    }
    found
}

#[test]
fn manifests_the_agent_runs_on_every_node_unprivileged_with_the_capabilities_it_needs() {
    let documents = all();
    let spec = pod_spec(&documents, "DaemonSet", "tabby-agent");
    assert_eq!(spec.host_network, Some(true));
    let tolerations = spec.tolerations.unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.key.is_none()
                && t.effect.is_none()),
        "the agent must tolerate every taint: {tolerations:?}"
    );
    for container in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let context = container.security_context.clone().unwrap_or_default();
        assert_ne!(
            context.privileged,
            Some(true),
            "{} is privileged",
            container.name
        );
        assert_eq!(
            context.allow_privilege_escalation,
            Some(false),
            "{}",
            container.name
        );
        let capabilities = context.capabilities.unwrap_or_default();
        assert_eq!(
            capabilities.drop,
            Some(vec!["ALL".to_owned()]),
            "{}",
            container.name
        );
        let added = capabilities.add.unwrap_or_default();
        let expected: &[&str] = match container.name.as_str() {
            "tabby-agent" => &["NET_ADMIN", "NET_BIND_SERVICE"],
            _ => &[],
        };
        assert_eq!(added, expected, "{}", container.name);
    }
    let install = spec.init_containers.unwrap_or_default();
    assert_eq!(
        install
            .iter()
            .map(|c| c.command.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        [vec!["tabby-install-cni".to_owned()]]
    );
}

#[test]
fn manifests_every_agent_environment_variable_is_a_flag_of_tabby_agent() {
    let command = agent::config::Flags::command();
    let known: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    let spec = pod_spec(&all(), "DaemonSet", "tabby-agent");
    let agent = spec
        .containers
        .iter()
        .find(|c| c.name == "tabby-agent")
        .unwrap();
    let variables = env(agent);
    for name in variables.keys().filter(|n| n.starts_with("TABBY_")) {
        assert!(
            known.contains(name),
            "{name} is no flag of tabby-agent: {known:?}"
        );
    }
    // The flags parse as the agent would parse them on a node.
    let mut args = vec!["tabby-agent".to_owned()];
    for (name, value) in &variables {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
        else {
            continue;
        };
        let value = value.clone().unwrap_or_else(|| "worker-1".into());
        let value = value.replace("$(HOST_IP)", "192.0.2.10");
        args.push(format!("--{}={value}", arg.get_long().unwrap()));
    }
    let flags = <agent::config::Flags as clap::Parser>::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    flags.options(|| None).unwrap();
}

/// The port `container`'s probes hit, each.
fn probe_ports(container: &Container) -> Vec<(String, String)> {
    [&container.liveness_probe, &container.readiness_probe]
        .into_iter()
        .map(|probe| {
            let get = probe
                .as_ref()
                .and_then(|p| p.http_get.clone())
                .unwrap_or_else(|| panic!("{}: a probe is missing", container.name));
            let port = match get.port {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s,
            };
            (get.path.unwrap_or_default(), port)
        })
        .collect()
}

#[test]
fn manifests_probes_ask_the_health_endpoints_where_each_component_serves_them() {
    let documents = all();
    let served = [
        ("DaemonSet", "tabby-agent", "TABBY_METRICS_ADDRESS"),
        (
            "Deployment",
            "tabby-ipam-controller",
            "TABBY_METRICS_ADDRESS",
        ),
    ];
    for (kind, name, variable) in served {
        let spec = pod_spec(&documents, kind, name);
        let container = spec.containers.iter().find(|c| c.name == name).unwrap();
        let address = env(container)[variable].clone().unwrap();
        let port = address.rsplit(':').next().unwrap().to_owned();
        assert_eq!(
            probe_ports(container),
            [
                ("/healthz".to_owned(), port.clone()),
                ("/readyz".to_owned(), port)
            ],
            "{name}"
        );
    }
    // The reflector's address is in its configuration file.
    let config = find(&documents, "ConfigMap", "tabby-reflector-config").unwrap();
    let file: Value =
        yaml_serde::from_str(config.value["data"]["reflector.yaml"].as_str().unwrap()).unwrap();
    let port = file["metrics"]["address"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let spec = pod_spec(&documents, "Deployment", "tabby-reflector");
    assert_eq!(
        probe_ports(&spec.containers[0]),
        [
            ("/healthz".to_owned(), port.clone()),
            ("/readyz".to_owned(), port)
        ]
    );
}

#[test]
fn manifests_the_reflectors_are_two_on_different_nodes_and_a_drain_keeps_one() {
    let documents = all();
    let deployment: Deployment = typed(&documents, "Deployment", "tabby-reflector");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let labels = spec.selector.match_labels.clone().unwrap();
    let pod = spec.template.spec.unwrap();
    let anti = pod.affinity.unwrap().pod_anti_affinity.unwrap();
    let required = anti
        .required_during_scheduling_ignored_during_execution
        .unwrap();
    assert_eq!(required.len(), 1);
    assert_eq!(required[0].topology_key, "kubernetes.io/hostname");
    assert_eq!(
        required[0]
            .label_selector
            .clone()
            .unwrap()
            .match_labels
            .unwrap(),
        labels
    );
    let budget: PodDisruptionBudget = typed(&documents, "PodDisruptionBudget", "tabby-reflector");
    let budget = budget.spec.unwrap();
    assert_eq!(
        budget.min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    assert_eq!(budget.selector.unwrap().match_labels.unwrap(), labels);
    let service: k8s_openapi::api::core::v1::Service =
        typed(&documents, "Service", "tabby-reflector");
    assert_eq!(service.spec.unwrap().selector.unwrap(), labels);
}

#[test]
fn manifests_every_image_a_pod_runs_has_a_containerfile_that_installs_its_commands() {
    let documents = all();
    let workloads = [
        ("DaemonSet", "tabby-agent"),
        ("Deployment", "tabby-reflector"),
        ("Deployment", "tabby-ipam-controller"),
    ];
    for (kind, name) in workloads {
        let spec = pod_spec(&documents, kind, name);
        for container in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let image = container.image.clone().unwrap();
            let repository = image.rsplit('/').next().unwrap().split(':').next().unwrap();
            let folder = repository.strip_prefix("tabby-").unwrap();
            let containerfile =
                manifests::directory().join(format!("images/{folder}/Containerfile"));
            let text = std::fs::read_to_string(&containerfile)
                .unwrap_or_else(|e| panic!("{image}: {}: {e}", containerfile.display()));
            let command = &container.command.clone().unwrap()[0];
            let installed = match command.strip_prefix('/') {
                Some(path) => !text.contains("FROM scratch") && path.starts_with("bin/"),
                None => text.contains(&format!("/usr/local/bin/{command}")),
            };
            assert!(
                installed,
                "{name}/{}: {image} has no {command}",
                container.name
            );
        }
        assert_eq!(spec.service_account_name.as_deref(), Some(name));
    }
}
