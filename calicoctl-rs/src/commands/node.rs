//! `node status` and `node routes`: what the node's tabby-agent (or a
//! tabby-reflector) says over its gRPC socket. `node status` prints the BGP peers as
//! calicoctl prints BIRD's, and exits 1 when the daemon is not ready or a peer is not
//! Established, so it serves as a health check.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use proto::bgp_status::bgp_status_client::BgpStatusClient;
use proto::bgp_status::{
    HealthRequest, ListPeersRequest, ListRoutesRequest, Peer, PeerType, Route, SessionState,
};
use tonic::transport::Channel;

use crate::cli::{NodeCommand, RoutesArgs, StatusArgs};
use crate::error::CliError;
use crate::output::{OutputFormat, exit};
use crate::session::Session;
use crate::table::Table;

/// How long the daemon may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn node(session: &mut Session<'_>, command: NodeCommand) -> Result<i32, CliError> {
    match command {
        NodeCommand::Status(args) => status(session, args).await,
        NodeCommand::Routes(args) => routes(session, args).await,
    }
}

async fn client(socket: &Path) -> Result<BgpStatusClient<Channel>, CliError> {
    let channel = tokio::time::timeout(ANSWER_TIMEOUT, proto::client::connect_unix(socket))
        .await
        .map_err(|_| unreachable(socket, "no answer"))?
        .map_err(|e| unreachable(socket, &innermost(&e)))?;
    Ok(BgpStatusClient::new(channel))
}

fn unreachable(socket: &Path, why: &str) -> CliError {
    CliError::Connect(format!(
        "cannot reach tabby's status socket {}: {why} (is tabby-agent running on this node? \
         --socket names another)",
        socket.display()
    ))
}

/// The root cause of a transport error ("No such file or directory").
fn innermost(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// One call, with a deadline and the daemon's refusal as an error.
async fn call<T>(
    what: &str,
    request: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CliError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, request).await {
        Err(_) => Err(CliError::Connect(format!(
            "the daemon did not answer {what} within {}s",
            ANSWER_TIMEOUT.as_secs()
        ))),
        Ok(Err(status)) => Err(CliError::Connect(format!(
            "the daemon refused {what}: {}",
            status.message()
        ))),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

async fn status(session: &mut Session<'_>, args: StatusArgs) -> Result<i32, CliError> {
    let mut client = client(&args.socket).await?;
    let health = call("Health", client.health(HealthRequest {})).await?;
    let peers = call("ListPeers", client.list_peers(ListPeersRequest {})).await?;
    let mut text = if health.ready {
        format!("tabby is running (version {}).\n", health.version)
    } else {
        format!(
            "tabby is running (version {}) but not ready: {}.\n",
            health.version, health.detail
        )
    };
    text.push_str(&format!(
        "Local AS {}, router id {}; {} of {} peers established.\n",
        peers.local_as, peers.router_id, health.peers_established, health.peers_configured
    ));
    let now = unix_now();
    for (family, v6) in [("IPv4", false), ("IPv6", true)] {
        let rows: Vec<&Peer> = peers
            .peers
            .iter()
            .filter(|p| is_v6(&p.address) == v6)
            .collect();
        text.push_str(&format!("\n{family} BGP status\n"));
        if rows.is_empty() {
            text.push_str(&format!("No {family} peers found.\n"));
            continue;
        }
        // BFD's column only where a peer runs it, so calicoctl's table stays as it is.
        let bfd = rows.iter().any(|p| !p.bfd_state.is_empty());
        let mut columns = vec!["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"];
        if bfd {
            columns.push("BFD");
        }
        let mut table = Table::new(columns);
        for peer in rows {
            let mut row = peer_row(peer, now);
            if bfd {
                row.push(bfd_cell(peer));
            }
            table.push(row);
        }
        text.push_str(&table.render_boxed());
    }
    session.print(&text)?;
    let all_up = peers
        .peers
        .iter()
        .all(|p| p.state() == SessionState::Established);
    Ok(if health.ready && all_up {
        exit::OK
    } else {
        exit::PROBLEM
    })
}

fn is_v6(address: &str) -> bool {
    matches!(address.parse::<IpAddr>(), Ok(IpAddr::V6(_)))
}

/// calicoctl's columns: BIRD's protocol state (`up` or `start`) and info (the BGP
/// state, then the last error).
fn peer_row(peer: &Peer, now: i64) -> Vec<String> {
    let kind = match peer.r#type() {
        PeerType::NodeMesh => "node-to-node mesh",
        PeerType::Global => "global",
        PeerType::NodeSpecific => "node specific",
        PeerType::Static => "static",
        PeerType::Dynamic => "dynamic",
        PeerType::Discovered => "discovered",
        PeerType::Unspecified => "unknown",
    };
    let (state, info) = match peer.state() {
        SessionState::Established => ("up", "Established"),
        SessionState::Idle => ("start", "Idle"),
        SessionState::Connect => ("start", "Connect"),
        SessionState::Active => ("start", "Active"),
        SessionState::OpenSent => ("start", "OpenSent"),
        SessionState::OpenConfirm => ("start", "OpenConfirm"),
        SessionState::Down => ("start", "Down"),
        SessionState::Unspecified => ("unknown", "Unknown"),
    };
    let info = if peer.last_error.is_empty() {
        info.to_owned()
    } else {
        format!("{info} {}", peer.last_error)
    };
    vec![
        peer.address.clone(),
        kind.to_owned(),
        state.to_owned(),
        since(peer.since_unix_seconds, now),
        info,
    ]
}

/// The BFD session's state and its flaps, like `Up (2 flaps)`; `-` without BFD.
fn bfd_cell(peer: &Peer) -> String {
    match (peer.bfd_state.as_str(), peer.bfd_flaps) {
        ("", _) => "-".into(),
        (state, 0) => state.into(),
        (state, 1) => format!("{state} (1 flap)"),
        (state, flaps) => format!("{state} ({flaps} flaps)"),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// As BIRD shows it: the time of day within the last day, the date before (UTC).
fn since(unix_seconds: i64, now: i64) -> String {
    if unix_seconds <= 0 {
        return String::new();
    }
    let (days, seconds) = (
        unix_seconds.div_euclid(86_400),
        unix_seconds.rem_euclid(86_400),
    );
    if now - unix_seconds < 86_400 {
        let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
        return format!("{h:02}:{m:02}:{s:02}");
    }
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

async fn routes(session: &mut Session<'_>, args: RoutesArgs) -> Result<i32, CliError> {
    let wide = match args.output {
        OutputFormat::Table => false,
        OutputFormat::Wide => true,
        OutputFormat::Yaml | OutputFormat::Json => {
            return Err(CliError::Usage(
                "node routes prints -o table or -o wide".to_owned(),
            ));
        }
    };
    let mut client = client(&args.socket).await?;
    let request = ListRoutesRequest {
        prefix: args.prefix.map(|p| p.to_string()).unwrap_or_default(),
        peer: args.peer.map(|p| p.to_string()).unwrap_or_default(),
        limit: args.limit.unwrap_or(0),
    };
    let routes = call("ListRoutes", client.list_routes(request)).await?;
    session.print(&routes_table(&routes.routes, wide).render())?;
    Ok(exit::OK)
}

/// One row per path, the best path of each prefix marked `*` as BIRD marks it.
fn routes_table(routes: &[Route], wide: bool) -> Table {
    let mut columns = vec!["PREFIX", "BEST", "NEXTHOP", "PEER", "ASPATH"];
    if wide {
        columns.extend(["LOCALPREF", "MED", "ORIGIN", "COMMUNITIES", "STALE"]);
    }
    let mut table = Table::new(columns);
    for route in routes {
        for path in &route.paths {
            let as_path: Vec<String> = path.as_path.iter().map(u32::to_string).collect();
            let peer = if path.peer.is_empty() {
                "(local)"
            } else {
                &path.peer
            };
            let mut row = vec![
                route.prefix.clone(),
                if path.best { "*" } else { "" }.to_owned(),
                path.next_hop.clone(),
                peer.to_owned(),
                as_path.join(" "),
            ];
            if wide {
                let optional = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
                row.extend([
                    optional(path.local_pref),
                    optional(path.med),
                    path.origin.clone(),
                    path.communities.join(","),
                    if path.stale { "stale" } else { "" }.to_owned(),
                ]);
            }
            table.push(row);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_the_time_of_day_within_a_day_and_the_date_before() {
        let noon = 1_700_049_600; // 2023-11-15 12:00:00 UTC
        assert_eq!(since(noon, noon + 60), "12:00:00");
        assert_eq!(since(noon, noon + 3 * 86_400), "2023-11-15");
        assert_eq!(since(0, noon), "");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
