//! How a [`Report`] looks: the first thing a newcomer sees from `scripts/lab`.

use std::fmt;

use super::report::Report;
use super::{CONVERGED, POOL, Tor};

impl Report {
    fn title(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        let (pool_mode, how) = self.mode.vxlan().unwrap_or(("", ""));
        let peering = match self.reflectors.len() {
            0 => "the node-to-node mesh".to_owned(),
            n => plural(n, "route reflector", "route reflectors"),
        };
        let tor = match self.tor_kind {
            Tor::None => "no top-of-rack router",
            Tor::Bird => "a BIRD top-of-rack router",
            Tor::Frr => "an FRR top-of-rack router",
        };
        format!(
            "tabby lab: {} on {}, {peering}, {tor}, {}\n  pool {} with vxlanMode {pool_mode} ({how})",
            plural(self.nodes.len(), "node", "nodes"),
            plural(self.subnets, "subnet", "subnets"),
            plural(self.pods.len(), "pod", "pods"),
            POOL,
        )
    }
}

/// Left-aligned columns, two spaces apart.
fn table(f: &mut fmt::Formatter<'_>, indent: &str, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let cells = rows.iter().filter_map(|r| r.get(c));
            cells.map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (cell, &width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title())?;
        match self.convergence {
            Some(took) => writeln!(
                f,
                "  converged in {:.1} s (first agent started → every session up, every route in place)",
                took.as_secs_f64()
            )?,
            None => writeln!(
                f,
                "  did NOT converge within {} s (see the problems below)",
                CONVERGED.as_secs()
            )?,
        }

        writeln!(
            f,
            "\nApplied with calicoctl-rs apply -f {}",
            self.resources.display()
        )?;
        for line in &self.applied {
            writeln!(f, "  {line}")?;
        }

        writeln!(f, "\nBGP sessions (✓ established, ✗ not)")?;
        let rows: Vec<Vec<String>> = (self.nodes.iter())
            .chain(&self.reflectors)
            .chain(&self.tor)
            .map(|s| {
                let sessions = match &s.sessions {
                    Ok(sessions) => (sessions.iter())
                        .map(|s| format!("{} {}", mark(s.up), s.peer))
                        .collect::<Vec<_>>()
                        .join("  "),
                    Err(error) => format!("✗ {error}"),
                };
                vec![s.name.clone(), s.address.clone(), s.role.clone(), sessions]
            })
            .collect();
        table(f, "  ", &rows)?;
        if let Some(tor) = &self.tor {
            let learned = self.tor_blocks.iter().filter(|b| b.learned).count();
            writeln!(
                f,
                "\nThe {} learned {learned} of {} node blocks",
                tor.name,
                self.tor_blocks.len()
            )?;
            let rows: Vec<Vec<String>> = (self.tor_blocks.iter())
                .map(|b| {
                    vec![
                        format!("{} {}", mark(b.learned), b.block),
                        format!("{}'s block", b.owner),
                        format!("next hop {}", b.next_hop),
                    ]
                })
                .collect();
            table(f, "  ", &rows)?;
        }

        writeln!(f, "\nRoutes on each node (tabby's: ip route show proto 84)")?;
        for node in &self.routes {
            let mut rows: Vec<Vec<String>> = (node.routes.iter())
                .map(|(line, note)| {
                    let note = if note.is_empty() {
                        "✗ not implied by the datastore"
                    } else {
                        note
                    };
                    vec![String::new(), line.clone(), note.to_owned()]
                })
                .collect();
            for line in &node.missing {
                rows.push(vec![String::new(), line.clone(), "✗ missing".to_owned()]);
            }
            if let Some(first) = rows.first_mut() {
                first[0] = node.node.clone();
            }
            table(f, "  ", &rows)?;
        }

        writeln!(f, "\nPod-to-pod ping (row pings column)")?;
        let labels: Vec<String> = (self.pods.iter().enumerate())
            .map(|(i, (pod, node, ip))| format!("{:>2} {pod} on {node}  {ip}", i + 1))
            .collect();
        let width = labels.iter().map(String::len).max().unwrap_or(0);
        write!(f, "  {:<width$}", "")?;
        for (i, _) in self.pods.iter().enumerate() {
            write!(f, "{:>3}", i + 1)?;
        }
        writeln!(f)?;
        for (label, row) in labels.iter().zip(&self.reachable) {
            write!(f, "  {label:<width$}")?;
            for &ok in row {
                write!(f, "{:>3}", mark(ok))?;
            }
            writeln!(f)?;
        }

        writeln!(f)?;
        let problems = self.problems();
        let (ok, all) = self.pairs();
        if problems.is_empty() {
            writeln!(
                f,
                "OK: every BGP session is up, every node has the routes the datastore implies, \
                 {ok}/{all} pod pairs ping"
            )
        } else {
            writeln!(f, "FAILED:")?;
            for problem in problems {
                writeln!(f, "  - {problem}")?;
            }
            Ok(())
        }
    }
}
