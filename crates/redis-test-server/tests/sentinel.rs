//! Tests of [`RedisSentinels`] against real `redis-server` processes (never the one on
//! 6379).

use std::time::{Duration, Instant};

use redis_test_server::RedisSentinels;

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn sentinels_start_and_a_failover_switches_the_master() {
    let started = Instant::now();
    let sentinels = RedisSentinels::builder()
        .password("data pw")
        .sentinel_password("sentinel-pw")
        .start();
    eprintln!(
        "a master, a replica and 3 sentinels started in {:?}",
        started.elapsed()
    );

    assert_eq!(sentinels.master_name(), "mymaster");
    let hosts: Vec<String> = sentinels
        .sentinels()
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    assert_eq!(hosts.len(), 3);
    assert_eq!(
        sentinels.url(),
        format!("redis+sentinel://:data%20pw@{}/mymaster", hosts.join(","))
    );
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| format!("redis://:sentinel-pw@{h}"))
        .collect();
    assert_eq!(sentinels.sentinel_urls(), urls);
    assert!(!format!("{sentinels:?}").contains("pw"));

    let master = sentinels.master_port();
    let replica = sentinels.replica_port();
    assert_ne!(master, replica);
    assert_eq!(sentinels.data_nodes()[0].port(), master);
    assert_eq!(sentinels.cli(master, &["SET", "k", "v"]), "OK");
    assert_eq!(sentinels.cli(master, &["WAIT", "1", "5000"]), "1");
    let sentinel = sentinels.sentinels()[0].port();
    let reply = sentinels.cli(
        sentinel,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
    );
    assert_eq!(reply, format!("127.0.0.1\n{master}"));

    let took = sentinels.failover();
    eprintln!("SENTINEL FAILOVER switched the master in {took:?}");
    assert_eq!(sentinels.master_port(), replica);
    assert_eq!(sentinels.replica_port(), master);
    assert_eq!(sentinels.cli(replica, &["GET", "k"]), "v");
    assert_eq!(sentinels.cli(replica, &["SET", "k", "w"]), "OK");

    let took = sentinels.wait_until_healthy(TIMEOUT);
    eprintln!("the old master became a replica {took:?} later");
    assert_eq!(sentinels.cli(master, &["GET", "k"]), "w");
}

#[test]
fn a_killed_master_is_replaced_by_its_replica() {
    let mut sentinels = RedisSentinels::builder().master_name("cache").start();
    assert!(sentinels.url().ends_with("/cache"));
    let replica = sentinels.replica_port();
    let killed = sentinels.kill_master();
    let took = sentinels.wait_for_failover(killed, TIMEOUT);
    eprintln!("the sentinels promoted the replica {took:?} after the kill");
    assert_eq!(sentinels.master_port(), replica);
    assert!(!sentinels.data_node(killed).is_running());

    // Back, without data, then turned into a replica of the new master.
    sentinels.data_node_mut(killed).restart();
    let took = sentinels.wait_until_healthy(TIMEOUT);
    eprintln!("the restarted old master became a replica in {took:?}");
    assert_eq!(
        sentinels.replica_port(),
        killed,
        "{}",
        sentinels.log_tails()
    );
}
