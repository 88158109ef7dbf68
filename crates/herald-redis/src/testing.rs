//! Throwaway Redis for tests (feature `testing`), on free ports (never 6379), without
//! persistence, stopped on drop: one `redis-server` ([`RedisServer`]), a Redis Cluster of
//! three masters and three replicas ([`RedisCluster`]), or a master, a replica and three
//! Sentinels ([`RedisSentinels`]).
//!
//! When `redis-server` is not installed, [`RedisServer::start`] returns `None` after printing
//! that the test is skipped — unless `HERALD_REQUIRE_REDIS=1`, where it panics so CI fails.
#![allow(clippy::missing_panics_doc)]

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port, or `None` (skip) when none is installed.
    pub fn start(test: &str) -> Option<Self> {
        if !installed(test) {
            return None;
        }
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.run();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL): every key is gone, every connection drops.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts an empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `redis-server` is installed; prints the skip (or panics, with
/// `HERALD_REQUIRE_REDIS=1`) when it is not.
fn installed(test: &str) -> bool {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let required = std::env::var("HERALD_REQUIRE_REDIS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "HERALD_REQUIRE_REDIS=1 but redis-server is not installed"
        );
        // Straight to stderr, past the test harness' output capture, so a skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: redis-server is not installed (HERALD_REQUIRE_REDIS=1 fails instead)"
        );
    }
    installed
}

fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if port != 6379 {
            return port;
        }
    }
}

/// One `redis-server` process of a cluster or a Sentinel setup.
#[derive(Debug)]
struct Node {
    child: Option<Child>,
    port: u16,
}

impl Node {
    /// Spawns `redis-server` with `args` (a config file first, if any) and waits until it
    /// listens.
    fn spawn(port: u16, dir: &Path, args: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        wait_listening(port);
        Self {
            child: Some(child),
            port,
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `redis-cli -p PORT ARGS…`'s output, or `None` when it failed or took over 60 s (`--cluster
/// create` waits for the cluster to join without a bound of its own).
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = reader.join().ok()?;
    status?.success().then_some(out)
}

/// Polls `ready` every 50 ms until it holds, for at most `within`.
fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A fresh directory for the servers' files, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str, port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("herald-{what}-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Redis Cluster of three masters and three replicas (`redis-cli --cluster create
/// --cluster-replicas 1`), a node timeout of 1 s so that a killed master's replica takes over
/// within a few seconds.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: Scratch,
}

impl RedisCluster {
    /// Starts the six servers and creates the cluster, or `None` (skip) when `redis-server`
    /// is not installed.
    pub fn start(test: &str) -> Option<Self> {
        if !installed(test) {
            return None;
        }
        let ports: Vec<u16> = (0..6).map(|_| free_cluster_port()).collect();
        let dir = Scratch::new("cluster", ports[0]);
        let nodes: Vec<Node> = ports
            .iter()
            .map(|&port| {
                let conf = format!("nodes-{port}.conf");
                Node::spawn(
                    port,
                    &dir.0,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf,
                        "--cluster-node-timeout",
                        "1000",
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        cli(ports[0], &create).expect("redis-cli --cluster create");
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_healthy();
        Some(cluster)
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The port of the master serving `key`'s slot now.
    pub fn master_of(&self, key: &str) -> u16 {
        let live = self.live_port();
        let slot: u16 = cli(live, &["cluster", "keyslot", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT");
        self.owner(live, slot).expect("an owner of the slot")
    }

    /// Kills the master serving `key`'s slot (SIGKILL) and waits until its replica took
    /// over and the cluster is whole again; returns the new master's port.
    pub fn fail_over(&mut self, key: &str) -> u16 {
        let old = self.master_of(key);
        let slot: u16 = cli(self.live_port(), &["cluster", "keyslot", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT");
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == old) {
            node.kill();
        }
        let mut new = old;
        wait_until("a replica's promotion", Duration::from_secs(60), || {
            let live = self.live_port();
            match self.owner(live, slot) {
                Some(owner) if owner != old => {
                    new = owner;
                    cli(owner, &["cluster", "info"]).is_some_and(|i| i.contains("cluster_state:ok"))
                }
                _ => false,
            }
        });
        new
    }

    /// Moves `key`'s slot, with its keys, to another master (as `redis-cli --cluster
    /// reshard` does: IMPORTING, MIGRATING, MIGRATE, then SETSLOT NODE on every master);
    /// returns the new owner's port.
    pub fn move_slot(&self, key: &str) -> u16 {
        let from = self.master_of(key);
        let live = self.live_port();
        let slot = cli(live, &["cluster", "keyslot", key])
            .map(|s| s.trim().to_owned())
            .expect("CLUSTER KEYSLOT");
        let masters: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.alive())
            .map(|n| n.port)
            .filter(|&p| cli(p, &["role"]).is_some_and(|r| r.starts_with("master")))
            .collect();
        let to = *masters
            .iter()
            .find(|&&p| p != from)
            .expect("another master");
        let id = |port: u16| {
            cli(port, &["cluster", "myid"])
                .map(|s| s.trim().to_owned())
                .expect("CLUSTER MYID")
        };
        let (from_id, to_id) = (id(from), id(to));
        cli(to, &["cluster", "setslot", &slot, "importing", &from_id]).expect("IMPORTING");
        cli(from, &["cluster", "setslot", &slot, "migrating", &to_id]).expect("MIGRATING");
        loop {
            let keys =
                cli(from, &["cluster", "getkeysinslot", &slot, "100"]).expect("GETKEYSINSLOT");
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.to_string();
            let mut migrate = vec!["migrate", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            cli(from, &migrate).expect("MIGRATE");
        }
        for &master in &masters {
            cli(master, &["cluster", "setslot", &slot, "node", &to_id]).expect("SETSLOT NODE");
        }
        let slot: u16 = slot.parse().expect("a slot number");
        wait_until(
            "every node to agree on the move",
            Duration::from_secs(30),
            || {
                self.nodes
                    .iter()
                    .filter(|n| n.alive())
                    .all(|n| self.owner(n.port, slot) == Some(to))
            },
        );
        to
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.alive())
            .map(|n| n.port)
            .expect("a live node")
    }

    /// Who serves `slot`, according to the node on `port` (`CLUSTER NODES`: id, address,
    /// flags, master, ping, pong, epoch, link, slot ranges…).
    fn owner(&self, port: u16, slot: u16) -> Option<u16> {
        let nodes = cli(port, &["cluster", "nodes"])?;
        nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = fields.iter().skip(8).any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
            });
            let addr = fields.get(1)?.split('@').next()?;
            serves.then(|| addr.rsplit_once(':')?.1.parse().ok()).flatten()
        })
    }

    /// Every node knows the others and every slot is served, and every replica is in sync
    /// (a replica that never synced does not take over from a master that dies).
    fn wait_healthy(&self) {
        wait_until("the cluster to be whole", Duration::from_secs(30), || {
            self.nodes.iter().all(|n| {
                let whole = cli(n.port, &["cluster", "info"]).is_some_and(|i| {
                    i.contains("cluster_state:ok") && i.contains("cluster_known_nodes:6")
                });
                let synced = cli(n.port, &["info", "replication"]).is_some_and(|i| {
                    i.contains("role:master") || i.contains("master_link_status:up")
                });
                whole && synced
            })
        });
    }
}

/// A master, one replica, and three Sentinels (quorum 2) watching the master under the name
/// `herald`, with a down-after of 2 s (short, yet long enough that a loaded machine does not
/// fail over by mistake): a killed master's replica is promoted within a few
/// seconds. Three Sentinels, as Sentinel's documentation asks for the smallest sound setup.
#[derive(Debug)]
pub struct RedisSentinels {
    master: Node,
    replica: Node,
    sentinels: Vec<Node>,
    _dir: Scratch,
}

impl RedisSentinels {
    /// The name the Sentinels know the master by.
    pub const MASTER: &'static str = "herald";

    /// Starts the five servers and waits until the replica is in sync and every Sentinel
    /// knows the others, or `None` (skip) when `redis-server` is not installed.
    pub fn start(test: &str) -> Option<Self> {
        if !installed(test) {
            return None;
        }
        let master_port = free_port();
        let dir = Scratch::new("sentinel", master_port);
        // No wait before the replica's full sync (5 s by default).
        let master = Node::spawn(master_port, &dir.0, &["--repl-diskless-sync-delay", "0"]);
        let replica = Node::spawn(
            free_port(),
            &dir.0,
            &["--replicaof", "127.0.0.1", &master_port.to_string()],
        );
        wait_until("the replica's sync", Duration::from_secs(20), || {
            cli(replica.port, &["info", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"))
        });
        let sentinels = (0..3)
            .map(|i| {
                let port = free_port();
                let conf = dir.0.join(format!("sentinel-{i}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "sentinel monitor {name} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {name} 2000\n\
                         sentinel failover-timeout {name} 10000\n\
                         sentinel parallel-syncs {name} 1\n",
                        name = Self::MASTER
                    ),
                )
                .expect("write a sentinel config");
                let conf = conf.to_string_lossy().into_owned();
                Node::spawn(port, &dir.0, &[&conf, "--sentinel"])
            })
            .collect::<Vec<_>>();
        let setup = Self {
            master,
            replica,
            sentinels,
            _dir: dir,
        };
        wait_until(
            "the sentinels to know each other",
            Duration::from_secs(30),
            || {
                setup.sentinels.iter().all(|s| {
                    cli(s.port, &["sentinel", "master", Self::MASTER]).is_some_and(|out| {
                        let lines: Vec<&str> = out.lines().collect();
                        let field = |name: &str| {
                            lines
                                .iter()
                                .position(|l| *l == name)
                                .and_then(|i| lines.get(i + 1))
                                .copied()
                        };
                        field("num-other-sentinels") == Some("2")
                            && field("num-slaves") == Some("1")
                    })
                })
            },
        );
        Some(setup)
    }

    /// `redis+sentinel://S1,S2,S3/herald`.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+sentinel://{}/{}", sentinels.join(","), Self::MASTER)
    }

    /// The master's port.
    pub fn master_port(&self) -> u16 {
        self.master.port
    }

    /// Kills the master (SIGKILL) and waits until the Sentinels promoted the replica and
    /// the replica acts as master; returns its port.
    pub fn fail_over(&mut self) -> u16 {
        self.master.kill();
        let new = self.replica.port;
        let expected = new.to_string();
        wait_until("the sentinels' failover", Duration::from_secs(30), || {
            let named = cli(
                self.sentinels[0].port,
                &["sentinel", "get-master-addr-by-name", Self::MASTER],
            );
            named.is_some_and(|out| out.lines().nth(1) == Some(expected.as_str()))
                && cli(new, &["role"]).is_some_and(|r| r.starts_with("master"))
        });
        new
    }
}

/// The Redis key holding `channel`'s offset and epoch, to find the shard serving the
/// channel.
pub fn channel_key(channel: &str) -> String {
    crate::wire::Keys::new(channel).meta
}

/// Whether `key` holds a hash slot's vacant epoch (at most one per slot, 16,384, whatever
/// clients read; the first read in a slot may set it).
pub fn is_vacant_key(key: &str) -> bool {
    crate::wire::is_vacant_key(key)
}

/// The Redis keys of `channel`'s history stream, presence members and their users, as the
/// broker writes them: for tests that look at (or remove) them directly.
pub fn channel_keys(channel: &str) -> [String; 3] {
    let keys = crate::wire::Keys::new(channel);
    [keys.history, keys.members, keys.users]
}
