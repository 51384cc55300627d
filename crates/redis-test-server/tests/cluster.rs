//! Tests of [`RedisCluster`] against real `redis-server` processes (never the one on 6379).
//!
//! Each test starts a cluster of its own (a few seconds each), so there are few of them.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use redis_test_server::{RedisCluster, hash_tag_for_slot, key_slot};

mod common;

use common::{call, connect_port, encode, read_line};

/// Generous: the tests share a small, busy machine.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);

/// One key per slot: `keys[slot]`.
fn a_key_per_slot() -> Vec<String> {
    let mut keys = vec![String::new(); 16384];
    let mut missing = keys.len();
    for n in 0u64.. {
        let key = format!("k{n}");
        let slot = usize::from(key_slot(&key));
        if keys[slot].is_empty() {
            keys[slot] = key;
            missing -= 1;
            if missing == 0 {
                break;
            }
        }
    }
    keys
}

#[test]
fn a_cluster_starts_and_every_slot_answers_on_its_primary() {
    let started = Instant::now();
    let cluster = RedisCluster::start();
    eprintln!(
        "a cluster of 3 primaries and 3 replicas started in {:?}",
        started.elapsed()
    );

    let primaries = cluster.primary_ports();
    let replicas = cluster.replica_ports();
    assert_eq!(primaries.len(), 3, "{cluster:?}");
    assert_eq!(replicas.len(), 3, "{cluster:?}");
    assert_eq!(cluster.nodes().len(), 6);
    for &port in primaries.iter().chain(&replicas) {
        assert_ne!(port, 6379);
        assert!(cluster.nodes().iter().any(|n| n.port() == port));
    }
    for &primary in &primaries {
        let replica = cluster
            .replica_of(primary)
            .expect("every primary has a replica");
        assert!(replicas.contains(&replica));
        assert_eq!(cluster.replicas_of(primary), [replica]);
    }
    assert_eq!(cluster.replica_of(replicas[0]), None);
    let ranges = cluster.slot_ranges();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert_eq!(*ranges[0].0.start(), 0);
    assert_eq!(*ranges[2].0.end(), 16383);
    assert_eq!(cluster.primary_for_slot(0), ranges[0].1);
    assert_eq!(cluster.primary_for_slot(16383), ranges[2].1);

    let hosts: Vec<String> = primaries.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert_eq!(
        cluster.url(),
        format!("redis+cluster://{}", hosts.join(","))
    );
    let seeds: Vec<String> = hosts.iter().map(|h| format!("redis://{h}")).collect();
    assert_eq!(cluster.seed_urls(), seeds);

    // `key_slot` agrees with Redis.
    for key in [
        "foo",
        "{user1000}.following",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "a{b}c{d}",
    ] {
        let slot = cluster.cli(primaries[0], &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(slot, key_slot(key).to_string(), "{key}");
    }
    assert_eq!(
        key_slot(format!("{{{}}}x", hash_tag_for_slot(16383))),
        16383
    );

    // A SET for every slot, pipelined to the primary that owns it, answers OK.
    let keys = a_key_per_slot();
    let mut batches: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for (range, port) in &ranges {
        for slot in range.clone() {
            let key = &keys[usize::from(slot)];
            batches
                .entry(*port)
                .or_default()
                .extend(encode(&["SET", key, "v"]));
            *counts.entry(*port).or_default() += 1;
        }
    }
    for (port, batch) in batches {
        let mut stream = connect_port(port);
        stream.write_all(&batch).unwrap();
        for _ in 0..counts[&port] {
            assert_eq!(read_line(&mut stream).unwrap(), "+OK", "on port {port}");
        }
    }
    let total: u64 = primaries
        .iter()
        .map(|&p| cluster.cli(p, &["DBSIZE"]).parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 16384);

    // Another node redirects; `-c` follows.
    let key = &keys[0];
    let other = primaries.iter().find(|&&p| p != ranges[0].1).unwrap();
    let moved = call(&mut connect_port(*other), &["GET", key]);
    assert_eq!(moved, format!("-MOVED 0 127.0.0.1:{}", ranges[0].1));
    assert_eq!(cluster.cli(*other, &["-c", "GET", key]), "v");
}

#[test]
fn a_killed_primary_is_replaced_by_its_replica_and_can_come_back() {
    let mut cluster = RedisCluster::builder().password("cluster pw/1").start();
    let seeds = cluster.seed_urls();
    assert!(
        seeds[0].starts_with("redis://:cluster%20pw%2F1@127.0.0.1:"),
        "{seeds:?}"
    );
    assert!(
        cluster
            .url()
            .starts_with("redis+cluster://:cluster%20pw%2F1@127.0.0.1:")
    );
    assert!(!format!("{cluster:?}").contains("cluster pw"));

    let slot = key_slot("user:1");
    let primary = cluster.primary_for_slot(slot);
    let replica = cluster.replica_of(primary).unwrap();
    assert_eq!(cluster.cli(primary, &["SET", "user:1", "alice"]), "OK");
    assert_eq!(cluster.cli(primary, &["WAIT", "1", "5000"]), "1");

    let killed = cluster.kill_primary_for_slot(slot);
    assert_eq!(killed, primary);
    assert!(!cluster.node_on(killed).is_running());
    let took = cluster.wait_for_failover(killed, FAILOVER_TIMEOUT);
    eprintln!("the replica took over {took:?} after the kill");
    assert_eq!(cluster.primary_for_slot(slot), replica);
    assert!(cluster.primary_ports().contains(&replica));
    assert!(!cluster.primary_ports().contains(&killed));
    assert_eq!(cluster.cli(replica, &["GET", "user:1"]), "alice");

    // Back, without data, as a replica of its successor.
    cluster.restart_node(killed);
    let took = cluster.wait_until_healthy(HEALTHY_TIMEOUT);
    eprintln!("the old primary rejoined as a replica in {took:?}");
    assert_eq!(cluster.replica_of(replica), Some(killed));
    assert_eq!(cluster.cli(killed, &["-c", "GET", "user:1"]), "alice");

    // A wait that times out says why, with the nodes' logs and no password.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cluster.wait_for_failover(replica, Duration::from_millis(500))
    }));
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("still gives slots to"), "{message}");
    assert!(
        message.contains(&format!("--- node 127.0.0.1:{replica}")),
        "{message}"
    );
    assert!(!message.contains("cluster pw"), "{message}");

    // A manual failover makes it the primary again.
    let took = cluster.failover(killed);
    eprintln!("CLUSTER FAILOVER took {took:?}");
    assert_eq!(cluster.primary_for_slot(slot), killed);
    assert_eq!(cluster.replica_of(killed), Some(replica));
}

#[test]
fn reshard_moves_slots_with_their_keys() {
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let (from, to) = (cluster.primary_for_slot(0), cluster.primary_for_slot(16383));
    let key = |slot: u16| format!("{{{}}}:k", hash_tag_for_slot(slot));
    for slot in [0, 99, 100] {
        assert_eq!(cluster.cli(from, &["SET", &key(slot), "v"]), "OK");
    }

    let output = cluster.reshard(from, to, 100).unwrap();
    assert!(output.contains("Moving slot 99"), "{output}");
    assert_eq!(cluster.primary_for_slot(0), to);
    assert_eq!(cluster.primary_for_slot(99), to);
    assert_eq!(cluster.primary_for_slot(100), from);
    assert_eq!(cluster.cli(to, &["GET", &key(0)]), "v");
    assert_eq!(cluster.cli(to, &["GET", &key(99)]), "v");
    assert_eq!(cluster.cli(from, &["GET", &key(100)]), "v");

    // In the background, while keys are written and read through redirects.
    let mut job = cluster.start_reshard(to, from, 100);
    let mut rounds: u16 = 0;
    while !job.is_finished() || rounds < 3 {
        let k = key(rounds % 200);
        assert_eq!(cluster.cli(from, &["-c", "SET", &k, "w"]), "OK");
        assert_eq!(cluster.cli(to, &["-c", "GET", &k]), "w");
        rounds += 1;
    }
    job.wait().unwrap();
    cluster.wait_until_healthy(HEALTHY_TIMEOUT);
    let owners: Vec<u16> = [0, 99, 100]
        .map(|slot| cluster.primary_for_slot(slot))
        .into();
    assert_eq!(owners, [from, from, from]);
    assert_eq!(cluster.cli(from, &["GET", &key(0)]), "w");
}

#[test]
fn fewer_than_3_primaries_are_refused() {
    let result = std::panic::catch_unwind(|| RedisCluster::builder().primaries(2).start());
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("at least 3 primaries"), "{message}");
}
