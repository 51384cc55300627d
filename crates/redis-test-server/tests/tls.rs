//! Tests of [`RedisCluster`] and [`RedisSentinels`] serving TLS only, against real
//! `redis-server` processes (never the one on 6379).
//!
//! Each test starts 5 or 6 processes (a few seconds), so there are few of them.

use std::time::{Duration, Instant};

use redis_test_server::{RedisCluster, RedisSentinels, key_slot};

mod common;

use common::{connect_port, read_line, send};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Whether 127.0.0.1:`port` answers a PING sent without TLS.
fn answers_plain_ping(port: u16) -> bool {
    let mut stream = connect_port(port);
    send(&mut stream, &["PING"]);
    read_line(&mut stream).is_ok_and(|line| line == "+PONG")
}

/// The nodes a `CLUSTER SLOTS` reply printed by `redis-cli` names: every number that is
/// not a slot bound, that is each line after an IP address line.
fn ports_in_cluster_slots(reply: &str) -> Vec<u16> {
    let lines: Vec<&str> = reply.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "127.0.0.1")
        .map(|pair| pair[1].parse().unwrap())
        .collect()
}

#[test]
fn a_tls_cluster_serves_only_tls_and_announces_its_tls_ports() {
    let started = Instant::now();
    let cluster = RedisCluster::builder().tls().start();
    eprintln!(
        "a TLS cluster of 3 primaries and 3 replicas started in {:?}",
        started.elapsed()
    );

    let primaries = cluster.primary_ports();
    assert_eq!(primaries.len(), 3, "{cluster:?}");
    assert_eq!(cluster.replica_ports().len(), 3, "{cluster:?}");
    let hosts: Vec<String> = primaries.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert_eq!(
        cluster.url(),
        format!("rediss+cluster://{}", hosts.join(","))
    );
    assert!(
        cluster
            .seed_urls()
            .iter()
            .all(|u| u.starts_with("rediss://"))
    );
    let pem = cluster.ca_cert_pem().expect("a TLS cluster has a CA");
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));

    for node in cluster.nodes() {
        assert_eq!(node.tls_port(), Some(node.port()));
        assert_eq!(node.ca_cert_pem().as_deref(), Some(&pem[..]), "one CA");
        assert!(node.url().starts_with("rediss://localhost:"), "{node:?}");
        let config = cluster.cli(node.port(), &["CONFIG", "GET", "port"]);
        assert_eq!(config, "port\n0", "no plain port");
        assert!(!answers_plain_ping(node.port()), "{node:?}");
    }

    // What a client learns from the cluster names the TLS ports of its nodes (replicas
    // appear only once they reported a replication offset).
    let slots = cluster.cli(primaries[0], &["CLUSTER", "SLOTS"]);
    let announced = ports_in_cluster_slots(&slots);
    for port in &primaries {
        assert!(announced.contains(port), "{slots}");
    }
    for port in announced {
        assert!(cluster.nodes().iter().any(|n| n.port() == port), "{slots}");
    }
    let key = "tls:k";
    let owner = cluster.primary_for_slot(key_slot(key));
    let other = *primaries.iter().find(|&&p| p != owner).unwrap();
    let moved = cluster.cli(other, &["GET", key]);
    let moved = moved.trim_end();
    assert!(moved.ends_with(&format!(" 127.0.0.1:{owner}")), "{moved}");
    assert_eq!(cluster.cli(other, &["-c", "SET", key, "v"]), "OK");
    assert_eq!(cluster.cli(owner, &["GET", key]), "v");

    // The replicas follow over TLS, and a failover keeps working.
    let replica = cluster.replica_of(owner).unwrap();
    assert_eq!(cluster.cli(owner, &["WAIT", "1", "5000"]), "1");
    let took = cluster.failover(replica);
    eprintln!("CLUSTER FAILOVER over TLS took {took:?}");
    assert_eq!(cluster.primary_for_slot(key_slot(key)), replica);
    assert_eq!(cluster.cli(replica, &["GET", key]), "v");
}

#[test]
fn tls_sentinels_serve_only_tls_and_fail_over() {
    let started = Instant::now();
    let sentinels = RedisSentinels::builder().tls().password("data-pw").start();
    eprintln!(
        "a TLS master, replica and 3 sentinels started in {:?}",
        started.elapsed()
    );

    let hosts: Vec<String> = sentinels
        .sentinels()
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    assert_eq!(
        sentinels.url(),
        format!("rediss+sentinel://:data-pw@{}/mymaster", hosts.join(","))
    );
    assert!(
        sentinels
            .sentinel_urls()
            .iter()
            .all(|u| u.starts_with("rediss://"))
    );
    let pem = sentinels.ca_cert_pem().expect("TLS sentinels have a CA");
    for node in sentinels.data_nodes() {
        let config = sentinels.cli(node.port(), &["CONFIG", "GET", "port"]);
        assert_eq!(config, "port\n0", "no plain port");
    }
    // Sentinels have no CONFIG command.
    let processes = sentinels.data_nodes().iter().chain(sentinels.sentinels());
    for process in processes {
        assert_eq!(process.tls_port(), Some(process.port()));
        assert_eq!(process.ca_cert_pem().as_deref(), Some(&pem[..]), "one CA");
        assert!(!answers_plain_ping(process.port()), "{process:?}");
    }

    let master = sentinels.master_port();
    let replica = sentinels.replica_port();
    let sentinel = sentinels.sentinels()[0].port();
    let reply = sentinels.cli(
        sentinel,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
    );
    assert_eq!(reply, format!("127.0.0.1\n{master}"));
    assert_eq!(sentinels.cli(master, &["SET", "k", "v"]), "OK");
    assert_eq!(sentinels.cli(master, &["WAIT", "1", "5000"]), "1");

    // The sentinels reach the data nodes over TLS, and the old master then replicates from
    // the new one over TLS.
    let took = sentinels.failover();
    eprintln!("SENTINEL FAILOVER over TLS switched the master in {took:?}");
    assert_eq!(sentinels.master_port(), replica);
    let took = sentinels.wait_until_healthy(TIMEOUT);
    eprintln!("the old master became a replica over TLS {took:?} later");
    assert_eq!(sentinels.replica_port(), master);
    assert_eq!(sentinels.cli(master, &["GET", "k"]), "v");
}
