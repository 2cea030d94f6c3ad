//! The pod's network, Calico's way: a veth whose host end (`cali...`) carries no
//! address, the pod's /32 (/128) on its end, a default route on-link via a fixed
//! gateway the host answers for (proxy ARP for 169.254.1.1; for IPv6 the host
//! end's own link-local address, derived from its fixed MAC), and a host route to
//! the pod through the host end tagged with tabby's route protocol.
//!
//! tabby-cni calls this (in the `cni` crate); it lives with the rest of the kernel
//! programming so that the agent and the plugin agree on names, tagging and the
//! gateway by construction.
//!
//! The host's side runs on the calling thread (the runtime calls the plugin in
//! the host's namespace); the pod's side on a thread that has entered the pod's
//! namespace, each with its own netlink socket.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkMessage;

use super::model::{Mac, ModelError, NextHop, Route, RouteTarget};
use super::netlink::link::Links;
use super::netlink::routes::{self, Seen};
use super::netlink::socket::{Request, Socket};
use super::netlink::veth::{self, Device, End};
use super::netlink::{NetlinkError, address, link};

/// Why attaching, checking or detaching a pod failed.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The kernel refused a change (`change` is what `ip` would have run).
    #[error("{change}: {}{}", std::io::Error::from_raw_os_error(*errno), reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Kernel {
        change: String,
        errno: i32,
        reason: Option<String>,
    },
    #[error("interface {name}: {problem}")]
    Device { name: String, problem: String },
    #[error("netlink: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The pod's routes cannot be expressed (an address the model refuses).
    #[error("{0}")]
    Model(#[from] ModelError),
    /// CHECK: the attachment is not what ADD made.
    #[error("{0}")]
    Differs(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PodError {
    let what = what.into();
    move |source| PodError::Io { what, source }
}

/// The pod's IPv4 gateway: never on any wire, answered by proxy ARP.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The pod's IPv6 gateway: the EUI-64 link-local address of [`HOST_MAC`].
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);
/// Every host end has this MAC, so pods' neighbour entries survive a new veth.
pub const HOST_MAC: Mac = Mac([0xee; 6]);

/// One workload's attachment.
#[derive(Debug)]
pub struct Workload<'a> {
    pub host_veth: &'a str,
    pub ifname: &'a str,
    pub netns: &'a File,
    pub mtu: Option<u32>,
    /// The pod's addresses, each becoming a /32 or /128.
    pub addresses: &'a [IpAddr],
}

/// Creates the veth and configures both ends; returns the pod end's MAC. On
/// failure the caller removes the veth with [`detach`] (whatever step failed).
pub fn attach(workload: &Workload<'_>) -> Result<Option<Mac>, PodError> {
    let host = workload.host_veth;
    let host_index = netlink(async |socket| {
        create_pair(socket, workload).await?;
        find_link(socket, host)
            .await?
            .map(|d| d.index)
            .ok_or_else(|| vanished(host, "on the host"))
    })?;
    host_sysctls(host, workload.addresses)?;
    let pod_mac = in_netns(workload.netns, || {
        netlink(async |socket| {
            let pod = find_link(socket, workload.ifname)
                .await?
                .ok_or_else(|| vanished(workload.ifname, "in the pod"))?;
            let mut changes = vec![(
                format!("ip link set {} up", workload.ifname),
                veth::set_up(pod.index),
            )];
            let links = Links::from_pairs([(pod.index, workload.ifname)]);
            for &ip in workload.addresses {
                changes.push((
                    format!("ip addr add {} dev {}", IpNet::from(ip), workload.ifname),
                    address::replace_host_address(pod.index, ip),
                ));
            }
            for route in pod_routes(workload)? {
                changes.push(route_change(&route, &links)?);
            }
            apply(socket, changes).await?;
            Ok(pod.mac)
        })
    })?;
    netlink(async |socket| {
        let links = Links::from_pairs([(host_index, host)]);
        let mut changes = vec![(format!("ip link set {host} up"), veth::set_up(host_index))];
        for route in host_routes(workload)? {
            changes.push(route_change(&route, &links)?);
        }
        apply(socket, changes).await
    })?;
    Ok(pod_mac)
}

/// Deletes the host end (the kernel deletes the pod end and both ends' routes);
/// a veth that is already gone is success.
pub fn detach(host_veth: &str) -> Result<(), PodError> {
    netlink(async |socket| delete_host_end(socket, host_veth).await)
}

async fn delete_host_end(socket: &mut Socket, host_veth: &str) -> Result<(), PodError> {
    let answers = socket.batch(&[veth::delete_by_name(host_veth)]).await?;
    match answers.into_iter().next().flatten() {
        Some(refusal) if refusal.errno != libc::ENODEV => Err(PodError::Kernel {
            change: format!("ip link delete {host_veth}"),
            errno: refusal.errno,
            reason: refusal.message,
        }),
        _ => Ok(()),
    }
}

/// Verifies the attachment against what ADD reported: both ends up, the pod's
/// addresses and default routes, the host routes; `pod_mac` when ADD reported it.
pub fn check(workload: &Workload<'_>, pod_mac: Option<&str>) -> Result<(), PodError> {
    let host = workload.host_veth;
    netlink(async |socket| {
        let (links, dump) = read_links(socket).await?;
        require_up(veth::find(&dump, host), host, "on the host")?;
        require_routes(socket, &links, host_routes(workload)?, "on the host").await
    })?;
    in_netns(workload.netns, || {
        netlink(async |socket| {
            let ifname = workload.ifname;
            let (links, dump) = read_links(socket).await?;
            let device = require_up(veth::find(&dump, ifname), ifname, "in the pod")?;
            if let (Some(expected), Some(actual)) = (pod_mac, device.mac)
                && !expected.eq_ignore_ascii_case(&actual.to_string())
            {
                return Err(PodError::Differs(format!(
                    "{ifname} has MAC {actual}, ADD reported {expected}"
                )));
            }
            let present =
                address::on_device(&socket.dump(address::dump_request()).await?, device.index);
            for &ip in workload.addresses {
                let prefix = IpNet::from(ip).prefix_len();
                if !present.contains(&(ip, prefix)) {
                    return Err(PodError::Differs(format!(
                        "address {ip}/{prefix} is missing from {ifname} in the pod"
                    )));
                }
            }
            require_routes(socket, &links, pod_routes(workload)?, "in the pod").await
        })
    })
}

/// Creates the pair; a host end left by an earlier attempt for the same workload
/// (same name, so same pod) is replaced once.
async fn create_pair(socket: &mut Socket, workload: &Workload<'_>) -> Result<(), PodError> {
    use std::os::fd::AsFd;
    let host = End {
        name: workload.host_veth.to_owned(),
        mtu: workload.mtu,
        mac: Some(HOST_MAC),
    };
    let peer = End {
        name: workload.ifname.to_owned(),
        mtu: workload.mtu,
        mac: None,
    };
    let change = format!(
        "ip link add {} type veth peer name {} netns <CNI_NETNS>",
        host.name, peer.name
    );
    let create = veth::create_pair(&host, &peer, workload.netns.as_fd());
    let mut refusal = socket.batch(std::slice::from_ref(&create)).await?.remove(0);
    if refusal.as_ref().is_some_and(|r| r.errno == libc::EEXIST) {
        delete_host_end(socket, &host.name).await?;
        refusal = socket.batch(&[create]).await?.remove(0);
    }
    match refusal {
        None => Ok(()),
        Some(r) if r.errno == libc::EEXIST => Err(PodError::Kernel {
            change,
            errno: r.errno,
            reason: Some(format!(
                "the pod already has an interface {}: give CNI_IFNAME another name",
                peer.name
            )),
        }),
        Some(r) => Err(PodError::Kernel {
            change,
            errno: r.errno,
            reason: r.message,
        }),
    }
}

/// The default route and gateway of each family among `addresses`.
pub fn default_routes(addresses: &[IpAddr]) -> Vec<(IpNet, IpAddr)> {
    let families = [
        (IpNet::V4(Default::default()), IpAddr::from(GATEWAY_V4)),
        (IpNet::V6(Default::default()), IpAddr::from(GATEWAY_V6)),
    ];
    families
        .into_iter()
        .filter(|(dst, _)| {
            addresses
                .iter()
                .any(|ip| ip.is_ipv4() == dst.addr().is_ipv4())
        })
        .collect()
}

/// The pod's default routes: on-link via the gateway, through CNI_IFNAME.
fn pod_routes(workload: &Workload<'_>) -> Result<Vec<Route>, PodError> {
    default_routes(workload.addresses)
        .into_iter()
        .map(|(dst, gateway)| {
            Ok(Route::via(
                dst,
                [NextHop::onlink(gateway, workload.ifname)],
            )?)
        })
        .collect()
}

/// `<pod ip>/32 dev cali...` per address.
fn host_routes(workload: &Workload<'_>) -> Result<Vec<Route>, PodError> {
    workload
        .addresses
        .iter()
        .map(|&ip| Ok(Route::workload(IpNet::from(ip), workload.host_veth)?))
        .collect()
}

fn route_change(route: &Route, links: &Links) -> Result<(String, Request), PodError> {
    let request = routes::replace(route, links).map_err(|missing| vanished(&missing.0, ""))?;
    Ok((format!("ip route replace {route}"), request))
}

/// Proxy ARP and forwarding on the host end (Calico's settings); for IPv6, the
/// host end's link-local gateway address must be usable at once (no DAD).
fn host_sysctls(host: &str, addresses: &[IpAddr]) -> Result<(), PodError> {
    let mut settings = vec![
        (format!("ipv4/conf/{host}/forwarding"), "1"),
        (format!("ipv4/conf/{host}/proxy_arp"), "1"),
        // Otherwise the kernel delays proxy ARP answers by up to 0.8 s.
        (format!("ipv4/neigh/{host}/proxy_delay"), "0"),
    ];
    if addresses.iter().any(IpAddr::is_ipv6) {
        settings.extend([
            (format!("ipv6/conf/{host}/disable_ipv6"), "0"),
            (format!("ipv6/conf/{host}/accept_dad"), "0"),
            (format!("ipv6/conf/{host}/forwarding"), "1"),
        ]);
    }
    for (key, value) in settings {
        std::fs::write(format!("/proc/sys/net/{key}"), value)
            .map_err(io(format!("sysctl net/{key}={value}")))?;
    }
    Ok(())
}

/// Sends `changes` in one batch; the first refusal is the error.
async fn apply(socket: &mut Socket, changes: Vec<(String, Request)>) -> Result<(), PodError> {
    let (names, requests): (Vec<String>, Vec<Request>) = changes.into_iter().unzip();
    let answers = socket.batch(&requests).await?;
    match names
        .into_iter()
        .zip(answers)
        .find_map(|(n, a)| Some((n, a?)))
    {
        Some((change, refusal)) => Err(PodError::Kernel {
            change,
            errno: refusal.errno,
            reason: refusal.message,
        }),
        None => Ok(()),
    }
}

async fn find_link(socket: &mut Socket, name: &str) -> Result<Option<Device>, PodError> {
    Ok(veth::find(&socket.dump(link::dump_request()).await?, name))
}

async fn read_links(socket: &mut Socket) -> Result<(Links, Vec<RouteNetlinkMessage>), PodError> {
    let dump = socket.dump(link::dump_request()).await?;
    let messages: Vec<LinkMessage> = dump
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(link.clone()),
            _ => None,
        })
        .collect();
    Ok((Links::read(&messages).0, dump))
}

/// A device that was just created or found is gone: someone else deleted it.
fn vanished(name: &str, place: &str) -> PodError {
    PodError::Device {
        name: name.to_owned(),
        problem: format!("disappeared {place} while tabby-cni was configuring it"),
    }
}

fn require_up(device: Option<Device>, name: &str, place: &str) -> Result<Device, PodError> {
    match device {
        Some(device) if device.up => Ok(device),
        Some(_) => Err(PodError::Differs(format!(
            "interface {name} {place} is down"
        ))),
        None => Err(PodError::Differs(format!(
            "interface {name} {place} is missing"
        ))),
    }
}

/// Fails on the first of `expected` the kernel does not have exactly.
async fn require_routes(
    socket: &mut Socket,
    links: &Links,
    expected: Vec<Route>,
    place: &str,
) -> Result<(), PodError> {
    let present: Vec<(IpNet, RouteTarget)> = socket
        .dump(routes::dump_request())
        .await?
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(route) => match routes::read(route, links) {
                Some(Seen::Owned(dst, Some(target))) => Some((dst, target)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    match expected
        .into_iter()
        .find(|route| !present.contains(&(route.dst, route.target.clone())))
    {
        Some(route) => Err(PodError::Differs(format!(
            "route {route} is missing {place}"
        ))),
        None => Ok(()),
    }
}

/// Runs `work` with a fresh netlink socket in the calling thread's namespace.
fn netlink<T>(work: impl AsyncFnOnce(&mut Socket) -> Result<T, PodError>) -> Result<T, PodError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(io("starting a runtime for netlink"))?;
    runtime.block_on(async {
        let mut socket = Socket::open()?;
        work(&mut socket).await
    })
}

/// Runs `work` on a thread inside the namespace `netns`; the thread ends with it,
/// so no thread of the process is ever left in the pod's namespace.
fn in_netns<T: Send>(
    netns: &File,
    work: impl FnOnce() -> Result<T, PodError> + Send,
) -> Result<T, PodError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    PodError::Io {
                        what: "entering the pod's network namespace".into(),
                        source: e.into(),
                    }
                })?;
                work()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
