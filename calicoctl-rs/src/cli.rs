//! The command line: every command, flag and example `--help` shows.

use std::path::PathBuf;

use api::selector::Selector;
use clap::{Args, Parser, Subcommand};

use crate::config::DatastoreArgs;
use crate::kinds::ResourceKind;
use crate::output::{GetOutput, OutputFormat};

const EXAMPLES: &str = "\
Examples:
  calicoctl-rs apply -f pools.yaml              create or update what the file holds
  calicoctl-rs get ippools -o wide              pools with their encapsulation and NAT
  calicoctl-rs convert -f calico-pools.yaml     Calico v3 YAML in tabby's form
  calicoctl-rs --etcd-endpoints http://10.0.0.1:2379 get bgppeers

Datastore: flags, then TABBY_* variables, then -c FILE (default
/etc/tabby/calicoctl.yaml, calicoctl's CalicoAPIConfig format), then Calico's
variables (DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG, ...), then defaults.

Exit codes: 0 done, nothing wrong; 1 a problem was found or the request failed;
2 the command line or configuration is wrong.";

/// calicoctl-rs: manage tabby's IP pools, BGP peers and configuration.
#[derive(Debug, Parser)]
#[command(name = "calicoctl-rs", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub datastore: DatastoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show resources as a table, YAML or JSON
    #[command(after_help = GET_EXAMPLES)]
    Get(GetArgs),
    /// Create resources from files; fails, writing nothing, if any exists
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// Create resources, or update those that exist
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(FileArgs),
    /// Replace existing resources; fails, writing nothing, if any is missing
    #[command(after_help = REPLACE_EXAMPLES)]
    Replace(FileArgs),
    /// Delete resources by name or as listed in files
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(DeleteArgs),
    /// Change a resource with a JSON merge patch (RFC 7386)
    #[command(after_help = PATCH_EXAMPLES)]
    Patch(PatchArgs),
    /// Add, change or remove a resource's labels
    #[command(after_help = LABEL_EXAMPLES)]
    Label(LabelArgs),
    /// Print resources (Calico's projectcalico.org/v3 among them) in tabby's form
    #[command(after_help = CONVERT_EXAMPLES)]
    Convert(ConvertArgs),
    /// IP address management: configuration, allocations, consistency
    #[command(subcommand)]
    Ipam(IpamCommand),
    /// This node's BGP sessions and routes, from its tabby-agent
    #[command(subcommand)]
    Node(NodeCommand),
    /// This client's version and the datastore type, as `calicoctl version` prints them
    Version,
    /// Print a shell completion script
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
}

const GET_EXAMPLES: &str = "\
Examples:
  calicoctl-rs get ippools
  calicoctl-rs get ippool default-ipv4-ippool -o yaml
  calicoctl-rs get bgppeers -l 'rack == \"a\"' -o wide
  calicoctl-rs get nodes -o json
  calicoctl-rs get workloadendpoints -n kube-system
  calicoctl-rs get ippools -o custom-columns=NAME,CIDR,VXLANMODE
  calicoctl-rs get nodes -o go-template='{{range .items}}{{.metadata.name}} {{end}}'";

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind: ippools, ipreservations, ipamconfigs, bgpconfigurations, bgppeers,
    /// bgpfilters, nodes, workloadendpoints (calicoctl's aliases work: pool, bgpp,
    /// no, wep, ...)
    #[arg(value_enum, ignore_case = true, hide_possible_values = true)]
    pub kind: ResourceKind,
    /// Names; all resources of the kind when none is given
    pub names: Vec<String>,
    /// table (or ps), wide, yaml, json, custom-columns=HEADING,...,
    /// go-template=TEMPLATE or go-template-file=FILE
    #[arg(short, long, default_value = "table", value_name = "FORMAT")]
    pub output: GetOutput,
    /// Only resources whose labels match this selector
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<Selector>,
    /// Only workload endpoints of pods in this namespace (unlike calicoctl, every
    /// namespace is shown without it)
    #[arg(short, long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Every namespace (the default; accepted as calicoctl takes it)
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// YAML or JSON file, directory of them, or - for standard input; repeatable
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

const CREATE_EXAMPLES: &str = "\
Examples:
  calicoctl-rs create -f pool.yaml
  calicoctl-rs create -f manifests/ --skip-exists
  cat peers.yaml | calicoctl-rs create -f -";

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Leave resources that already exist as they are instead of failing
    #[arg(long)]
    pub skip_exists: bool,
}

const APPLY_EXAMPLES: &str = "\
Examples:
  calicoctl-rs apply -f pools.yaml
  calicoctl-rs apply -f calico-export.yaml      Calico v3 YAML is converted first
  calicoctl-rs get ippool p -o yaml | sed s/Never/Always/ | calicoctl-rs apply -f -";

const REPLACE_EXAMPLES: &str = "\
Examples:
  calicoctl-rs get bgppeer tor-a -o yaml > tor-a.yaml   (edit it)
  calicoctl-rs replace -f tor-a.yaml    fails if tor-a changed since it was read";

const DELETE_EXAMPLES: &str = "\
Examples:
  calicoctl-rs delete bgppeer tor-a tor-b
  calicoctl-rs delete -f peers.yaml --skip-not-found
  calicoctl-rs delete ippool old-pool   refused while the pool holds addresses";

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind of the named resources (not with -f)
    #[arg(value_enum, ignore_case = true, hide_possible_values = true)]
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    pub kind: Option<ResourceKind>,
    /// Names of the resources to delete
    #[arg(requires = "kind")]
    pub names: Vec<String>,
    /// Delete the resources these files hold
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Report missing resources but do not fail on them
    #[arg(long)]
    pub skip_not_found: bool,
    /// Delete IP pools even while they hold allocations
    #[arg(long)]
    pub force: bool,
}

const PATCH_EXAMPLES: &str = "\
Examples:
  calicoctl-rs patch ippool old-pool -p '{\"spec\":{\"disabled\":true}}'
  calicoctl-rs patch bgpconfiguration default -p 'spec: {asNumber: 65010}'
  calicoctl-rs patch bgppeer tor-a -p '{\"spec\":{\"password\":null}}'   null removes";

#[derive(Debug, Args)]
pub struct PatchArgs {
    #[arg(value_enum, ignore_case = true, hide_possible_values = true)]
    pub kind: ResourceKind,
    pub name: String,
    /// The merge patch, as JSON or YAML
    #[arg(short, long, value_name = "PATCH")]
    pub patch: String,
}

const LABEL_EXAMPLES: &str = "\
Examples:
  calicoctl-rs label nodes worker-1 rack=a
  calicoctl-rs label ippool pool-a zone=east --overwrite
  calicoctl-rs label bgppeer tor-a rack --remove";

#[derive(Debug, Args)]
pub struct LabelArgs {
    #[arg(value_enum, ignore_case = true, hide_possible_values = true)]
    pub kind: ResourceKind,
    pub name: String,
    /// KEY=VALUE to set, or KEY with --remove
    #[arg(required = true, value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Change labels that already have a value
    #[arg(long, conflicts_with = "remove")]
    pub overwrite: bool,
    /// Remove the labels named
    #[arg(long)]
    pub remove: bool,
}

const CONVERT_EXAMPLES: &str = "\
Examples:
  calicoctl get ippools -o yaml > pools.yaml && calicoctl-rs convert -f pools.yaml
  calicoctl-rs convert -f bgp.yaml -o json";

#[derive(Debug, Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// yaml or json
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,
}

const COMPLETION_EXAMPLES: &str = "\
Examples:
  calicoctl-rs completion bash > /etc/bash_completion.d/calicoctl-rs
  calicoctl-rs completion zsh > \"${fpath[1]}/_calicoctl-rs\"";

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where tabby-agent serves its status API on a node.
pub const DEFAULT_AGENT_SOCKET: &str = "/var/run/tabby/agent.sock";

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// BGP peers, as calicoctl node status shows them; exit 1 unless all are up
    #[command(after_help = NODE_STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Routes in the node's BGP RIB, every path per prefix, best first
    #[command(after_help = NODE_ROUTES_EXAMPLES)]
    Routes(RoutesArgs),
}

const NODE_STATUS_EXAMPLES: &str = "\
Examples:
  calicoctl-rs node status
  calicoctl-rs node status --socket /var/run/tabby/reflector.sock

SINCE is in UTC: the time of day for changes within a day, the date before.";

const NODE_ROUTES_EXAMPLES: &str = "\
Examples:
  calicoctl-rs node routes
  calicoctl-rs node routes --prefix 10.244.1.0/26 -o wide
  calicoctl-rs node routes --peer 10.0.0.1";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The daemon's status socket
    #[arg(long, env = "TABBY_AGENT_SOCKET", default_value = DEFAULT_AGENT_SOCKET)]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// The daemon's status socket
    #[arg(long, env = "TABBY_AGENT_SOCKET", default_value = DEFAULT_AGENT_SOCKET)]
    pub socket: PathBuf,
    /// Only this prefix (exact match)
    #[arg(long, value_name = "CIDR")]
    pub prefix: Option<api::resources::Cidr>,
    /// Only paths learned from this peer
    #[arg(long, value_name = "IP")]
    pub peer: Option<std::net::IpAddr>,
    /// At most this many prefixes
    #[arg(long)]
    pub limit: Option<u32>,
    /// table or wide
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Addresses in use per pool; blocks and owners, borrowed addresses, who holds an IP
    #[command(after_help = IPAM_SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Find leaks, double ownership, handles without addresses, blocks without
    /// affinity; exit 1 when anything is found
    #[command(after_help = IPAM_CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Free addresses: refused for one a live workload holds, unless --force
    #[command(after_help = IPAM_RELEASE_EXAMPLES)]
    Release(ReleaseArgs),
    /// Change the cluster's IPAM configuration (the IPAMConfig "default")
    #[command(after_help = IPAM_CONFIGURE_EXAMPLES)]
    Configure(ConfigureArgs),
}

const IPAM_SHOW_EXAMPLES: &str = "\
Examples:
  calicoctl-rs ipam show
  calicoctl-rs ipam show --show-blocks --show-borrowed
  calicoctl-rs ipam show --ip 192.168.1.7
  calicoctl-rs ipam show --pool 10.20.0.0/16 --show-allocations    who still uses a pool
  calicoctl-rs ipam show --show-configuration";

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Each block of each pool, with the node it is affine to
    #[arg(long)]
    pub show_blocks: bool,
    /// Addresses taken from another node's block
    #[arg(long)]
    pub show_borrowed: bool,
    /// Every allocation: address, node, pod, handle
    #[arg(long)]
    pub show_allocations: bool,
    /// Only this pool (name or CIDR)
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Who holds this address
    #[arg(long, value_name = "IP", conflicts_with_all = ["show_blocks", "show_borrowed", "show_allocations", "pool"])]
    pub ip: Option<std::net::IpAddr>,
    /// The IPAM configuration
    #[arg(long, conflicts_with = "ip")]
    pub show_configuration: bool,
}

const IPAM_CHECK_EXAMPLES: &str = "\
Examples:
  calicoctl-rs ipam check
  calicoctl-rs ipam check --show-problem-ips                 every address with a problem
  calicoctl-rs ipam check -o report.json && echo consistent
  calicoctl-rs ipam release --from-report report.json     frees the leaks it found

Allocations in flight while the check reads show up as problems that are gone on the
next run; a problem that stays is real.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also write the report as JSON to FILE (- for standard output)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,
    /// List each address with a problem (leaked, allocated twice, without a
    /// handle, a tunnel address not held), not only how many there are
    #[arg(long)]
    pub show_problem_ips: bool,
}

const IPAM_RELEASE_EXAMPLES: &str = "\
Examples:
  calicoctl-rs ipam release --ip 192.168.1.7
  calicoctl-rs ipam release --ip 192.168.1.7 --ip 192.168.1.9 --force
  calicoctl-rs ipam release --from-report report.json";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true))]
pub struct ReleaseArgs {
    /// Address to free; repeatable
    #[arg(long = "ip", value_name = "IP", group = "what")]
    pub ips: Vec<std::net::IpAddr>,
    /// Free the leaks an `ipam check -o FILE` report lists (each re-checked first)
    #[arg(long, value_name = "FILE", group = "what")]
    pub from_report: Option<PathBuf>,
    /// Free addresses even while their pod, node or unknown holder exists
    #[arg(long)]
    pub force: bool,
}

const IPAM_CONFIGURE_EXAMPLES: &str = "\
Examples:
  calicoctl-rs ipam configure --strictaffinity=true
  calicoctl-rs ipam configure --max-blocks-per-host 4 --autoallocateblocks=true";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("settings").required(true).multiple(true))]
pub struct ConfigureArgs {
    /// Never borrow addresses from another node's block
    #[arg(long, group = "settings", value_name = "BOOL")]
    pub strictaffinity: Option<bool>,
    /// Blocks one node may hold; 0 for no limit
    #[arg(long, group = "settings", value_name = "N")]
    pub max_blocks_per_host: Option<u32>,
    /// Claim new blocks when a node's are full
    #[arg(long, group = "settings", value_name = "BOOL")]
    pub autoallocateblocks: Option<bool>,
}
