//! `serve`: one piece of the local backend in a process of its own, until
//! Ctrl-C or SIGTERM, so that a benchmark can put it next to another
//! program and read each one's CPU from /proc: `serve pods` (built-in
//! httpbin pods with zero service time, no gateway) and `serve gateway` (the
//! embedded gateway alone, one route to the given endpoints). The flags are
//! checked here; `pods` and `gateway` start the servers.

mod gateway;
mod pods;

use std::net::SocketAddr;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::error::{exit, UsageError};

/// At most this many pods in one `serve pods`.
const MAX_PODS: usize = 256;
/// At most this many worker threads for `serve gateway --threads`.
const MAX_THREADS: usize = 256;

#[derive(Debug, Clone, Subcommand)]
pub enum ServeCommand {
    /// N built-in httpbin pods with zero service time on 127.0.0.1 ports P,
    /// P+1, …; no gateway in front. Prints one line per pod.
    Pods(PodsArgs),
    /// The embedded gateway alone on 127.0.0.1:PORT: one catch-all route,
    /// round robin over the given endpoints, as the local backend sets them.
    Gateway(GatewayArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PodsArgs {
    /// How many pods.
    #[arg(long, default_value_t = 2)]
    pub count: usize,
    /// The first pod's port; the others take the next ones (0: any free ports).
    #[arg(long)]
    pub port: u16,
}

#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The gateway's port on 127.0.0.1 (0: any free port).
    #[arg(long)]
    pub port: u16,
    /// An endpoint of the route's Service, 127.0.0.1:PORT; repeat for more.
    #[arg(long = "upstream", value_name = "ADDR", required = true)]
    pub upstreams: Vec<String>,
    /// Run the gateway on a runtime of its own with N worker threads (as
    /// nginx's `worker_processes`; 1 is tokio's single-threaded scheduler);
    /// default: the harness's runtime, one worker per CPU, as in a run.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs until Ctrl-C or SIGTERM, then stops its servers; exit code 0 (the
/// signal is how it is meant to end).
pub async fn run(cmd: ServeCommand) -> Result<i32> {
    match cmd {
        ServeCommand::Pods(a) => {
            let ports = pod_ports(&a)?;
            pods::serve(&ports, crate::signal::shutdown_signal()).await?
        }
        ServeCommand::Gateway(a) => {
            let upstreams = upstreams(&a.upstreams)?;
            if a.threads.is_some_and(|n| !(1..=MAX_THREADS).contains(&n)) {
                return Err(UsageError(format!(
                    "--threads {}: must be in 1..={MAX_THREADS}",
                    a.threads.unwrap_or(0)
                ))
                .into());
            }
            let stop = crate::signal::shutdown_signal();
            match a.threads {
                None => gateway::serve(a.port, upstreams, stop).await?,
                Some(n) => gateway::serve_on_own_runtime(n, a.port, upstreams, stop).await?,
            }
        }
    }
    Ok(exit::PASSED)
}

/// Each pod's port (all 0 for any free ports).
fn pod_ports(a: &PodsArgs) -> Result<Vec<u16>, UsageError> {
    if !(1..=MAX_PODS).contains(&a.count) {
        return Err(UsageError(format!(
            "--count {}: must be in 1..={MAX_PODS}",
            a.count
        )));
    }
    if a.port == 0 {
        return Ok(vec![0; a.count]);
    }
    let last = u32::from(a.port) + a.count as u32 - 1;
    if last > u32::from(u16::MAX) {
        return Err(UsageError(format!(
            "--port {} --count {}: the last pod's port would be {last}, past 65535",
            a.port, a.count
        )));
    }
    Ok((0..a.count).map(|i| a.port + i as u16).collect())
}

/// `--upstream` values as loopback socket addresses with a port.
fn upstreams(given: &[String]) -> Result<Vec<SocketAddr>, UsageError> {
    given
        .iter()
        .map(|s| {
            let addr: SocketAddr = s.parse().map_err(|_| {
                UsageError(format!(
                    "--upstream {s}: expected an address such as 127.0.0.1:8080"
                ))
            })?;
            if !addr.ip().is_loopback() {
                return Err(UsageError(format!(
                    "--upstream {s}: only loopback addresses (127.0.0.1) are served"
                )));
            }
            if addr.port() == 0 {
                return Err(UsageError(format!(
                    "--upstream {s}: port 0 is not a port to send to"
                )));
            }
            Ok(addr)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(count: usize, port: u16) -> Result<Vec<u16>, String> {
        pod_ports(&PodsArgs { count, port }).map_err(|e| e.0)
    }

    #[test]
    fn pod_ports_follow_the_first() {
        assert_eq!(ports(3, 18100).unwrap(), [18100, 18101, 18102]);
        assert_eq!(ports(2, 0).unwrap(), [0, 0]);
        assert_eq!(ports(1, 65535).unwrap(), [65535]);
        assert!(ports(2, 65535).unwrap_err().contains("65536, past 65535"));
        assert!(ports(0, 18100).unwrap_err().contains("--count 0"));
        assert!(ports(MAX_PODS + 1, 18100).is_err());
    }

    #[test]
    fn upstreams_are_loopback_addresses() {
        let up = |v: &[&str]| {
            upstreams(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map_err(|e| e.0)
        };
        assert_eq!(
            up(&["127.0.0.1:1", "[::1]:2"]).unwrap(),
            ["127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap()] as [SocketAddr; 2]
        );
        assert!(up(&["localhost:80"])
            .unwrap_err()
            .contains("expected an address"));
        assert!(up(&["127.0.0.1"])
            .unwrap_err()
            .contains("expected an address"));
        assert!(up(&["10.0.0.1:80"]).unwrap_err().contains("only loopback"));
        assert!(up(&["127.0.0.1:0"]).unwrap_err().contains("port 0"));
    }
}
