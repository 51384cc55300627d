//! `RedisBackplane`: invalidations over Redis pub/sub between caches of one namespace, on a
//! private server, across its restart, on a cluster and through sentinels.
//!
//! Every wait is for a condition, bounded by [`WITHIN`]; none assumes how long anything takes.

use std::time::{Duration, Instant};

use cache_redis::backplane::{Backplane, Event, Invalidation, Message, Subscription};
use cache_redis::{Cache, CacheError, RedisBackplane, RedisCache};
use redis_test_server::{RedisCluster, RedisSentinels, RedisServer, key_slot};
use tokio::sync::Mutex;

/// One cluster or set of sentinels at a time in this binary.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The bound of every call of the caches under test.
const TIMEOUT: Duration = Duration::from_millis(500);
/// The bound on every wait for a condition.
const WITHIN: Duration = Duration::from_secs(10);

fn cache(url: &str, namespace: &str) -> RedisCache {
    RedisCache::builder()
        .url(url)
        .namespace(namespace)
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn keys(sender: u64, keys: &[&str]) -> Message {
    Message {
        sender,
        invalidation: Invalidation::Keys(keys.iter().map(|&key| key.to_owned()).collect()),
    }
}

/// The next event of `subscription`, which must come within [`WITHIN`].
async fn next(subscription: &mut Subscription) -> Event {
    match tokio::time::timeout(WITHIN, subscription.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the subscription ended"),
        Err(_) => panic!("no event within {WITHIN:?}"),
    }
}

/// Waits for the first `Lost`, which says the subscription is active.
async fn active(subscription: &mut Subscription) {
    assert_eq!(next(subscription).await, Event::Lost);
}

/// Waits until `check` holds, up to [`WITHIN`].
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < WITHIN {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A plain connection to the server at `url`, bypassing the cache.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `PUBSUB NUMSUB channel` on the server at `url`: the connections subscribed to it there.
async fn subscribers(url: &str, channel: &str) -> i64 {
    let mut conn = raw(url).await;
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backplanes_of_one_namespace_hear_each_other_and_themselves_in_order() {
    let server = RedisServer::start();
    let url = server.url();
    let a = RedisBackplane::for_cache(&cache(&url, "bp:"));
    let b = RedisBackplane::for_cache(&cache(&url, "bp:"));
    let other = RedisBackplane::for_cache(&cache(&url, "bp-other:"));
    assert_eq!(a.channel(), "cache-invalidate:bp:");
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let mut on_b_clone = b.clone().subscribe();
    let mut on_other = other.subscribe();
    for subscription in [&mut on_a, &mut on_b, &mut on_b_clone, &mut on_other] {
        active(subscription).await;
    }

    let long = "x".repeat(100_000);
    let odd = keys(
        1,
        &[
            "",
            "plain",
            "k:1:é\0\n\r\t",
            "*?[]\\ {tag}",
            "inv1 0000000000000001 C",
            "12:not-a-length",
            &long,
        ],
    );
    let clear = Message {
        sender: 2,
        invalidation: Invalidation::Clear,
    };
    let empty = keys(1, &[]);
    a.publish(&odd).await.unwrap();
    b.publish(&clear).await.unwrap();
    a.publish(&empty).await.unwrap();
    // Both instances, and each subscription of one, in the order Redis took them.
    for subscription in [&mut on_a, &mut on_b, &mut on_b_clone] {
        for message in [&odd, &clear, &empty] {
            assert_eq!(next(subscription).await, Event::Message(message.clone()));
        }
    }

    // A payload that is not a message is skipped; what follows still arrives.
    let mut conn = raw(&url).await;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(a.channel())
        .arg(&b"not a message"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    // A subscription made while the connection is active starts with `Lost` too.
    let mut late = a.subscribe();
    active(&mut late).await;
    let after = keys(3, &["after"]);
    b.publish(&after).await.unwrap();
    assert_eq!(next(&mut on_a).await, Event::Message(after.clone()));
    assert_eq!(next(&mut late).await, Event::Message(after));

    // Another namespace heard none of the above: the first thing it hears is its own,
    // published after all of it on the same server.
    let own = keys(4, &["own"]);
    other.publish(&own).await.unwrap();
    assert_eq!(next(&mut on_other).await, Event::Message(own));
    // One connection per backplane, whatever its subscriptions and clones.
    assert_eq!(subscribers(&url, a.channel()).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_receive_latency_on_loopback() {
    let server = RedisServer::start();
    let url = server.url();
    let publisher = RedisBackplane::for_cache(&cache(&url, "lat:"));
    let receiver = RedisBackplane::for_cache(&cache(&url, "lat:"));
    let mut subscription = receiver.subscribe();
    active(&mut subscription).await;
    let mut latencies = Vec::new();
    for n in 0..1_000u64 {
        let message = keys(n, &["k"]);
        let sent = Instant::now();
        publisher.publish(&message).await.unwrap();
        assert_eq!(next(&mut subscription).await, Event::Message(message));
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "publish -> receive over loopback, {} messages one at a time: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_every_subscription_hears_lost_then_messages_again() {
    let mut server = RedisServer::start();
    let url = server.url();
    let a_cache = cache(&url, "restart:");
    let a = RedisBackplane::for_cache(&a_cache);
    let b = RedisBackplane::for_cache(&cache(&url, "restart:"));
    let mut subscriptions = vec![a.subscribe(), a.subscribe(), b.subscribe()];
    for subscription in &mut subscriptions {
        active(subscription).await;
    }
    let before = keys(1, &["before"]);
    a.publish(&before).await.unwrap();
    for subscription in &mut subscriptions {
        assert_eq!(next(subscription).await, Event::Message(before.clone()));
    }

    server.kill();
    // Nothing while Redis is down: `Lost` comes once the subscription is back.
    let quiet = tokio::time::timeout(Duration::from_millis(500), subscriptions[0].next()).await;
    assert!(quiet.is_err(), "{quiet:?} while redis was down");
    tokio::task::block_in_place(|| server.restart());
    let restarted = Instant::now();
    for subscription in &mut subscriptions {
        assert_eq!(next(subscription).await, Event::Lost);
    }
    eprintln!(
        "every subscription heard Lost {:?} after redis answered again",
        restarted.elapsed()
    );
    // Both backplanes are subscribed again: `Lost` came after their SUBSCRIBE.
    assert_eq!(subscribers(&url, a.channel()).await, 2);

    // The publisher's own connection comes back too (its first command may find it broken).
    assert!(eventually(async || a_cache.ping().await.is_ok()).await);
    let after = keys(2, &["after"]);
    a.publish(&after).await.unwrap();
    for subscription in &mut subscriptions {
        assert_eq!(next(subscription).await, Event::Message(after.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_subscription_is_checked_with_a_ping_and_kept() {
    let server = RedisServer::start();
    let url = server.url();
    let backplane = RedisBackplane::for_cache(&cache(&url, "quiet:"));
    let mut subscription = backplane.subscribe();
    active(&mut subscription).await;
    let pings = |stats: String| {
        stats
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse::<u64>().unwrap())
    };
    let mut conn = raw(&url).await;
    let info = async |conn: &mut redis::aio::MultiplexedConnection| -> String {
        redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await
            .unwrap()
    };
    let before = pings(info(&mut conn).await);
    // Past the 5 s after which a quiet subscription is checked (nothing else sends PING).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(pings(info(&mut conn).await) > before, "no PING was sent");
    // The check passed: the same subscription goes on, with no `Lost`.
    let message = keys(1, &["k"]);
    backplane.publish(&message).await.unwrap();
    assert_eq!(next(&mut subscription).await, Event::Message(message));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_end_when_the_backplane_is_dropped_or_the_cache_closed() {
    let server = RedisServer::start();
    let url = server.url();

    let backplane = RedisBackplane::for_cache(&cache(&url, "drop:"));
    let channel = backplane.channel().to_owned();
    let mut subscription = backplane.subscribe();
    active(&mut subscription).await;
    let clone = backplane.clone();
    drop(backplane);
    // A clone keeps it going.
    let message = keys(1, &["k"]);
    clone.publish(&message).await.unwrap();
    assert_eq!(next(&mut subscription).await, Event::Message(message));
    drop(clone);
    let ended = tokio::time::timeout(WITHIN, subscription.next()).await;
    assert_eq!(ended, Ok(None));
    // And its connection closed.
    assert!(eventually(async || subscribers(&url, &channel).await == 0).await);

    let closed_cache = cache(&url, "close:");
    let backplane = RedisBackplane::for_cache(&closed_cache);
    let mut subscription = backplane.subscribe();
    active(&mut subscription).await;
    closed_cache.close().await.unwrap();
    let ended = tokio::time::timeout(WITHIN, subscription.next()).await;
    assert_eq!(ended, Ok(None));
    assert!(eventually(async || subscribers(&url, backplane.channel()).await == 0).await);
    assert_eq!(backplane.subscribe().next().await, None);
    assert!(matches!(
        backplane.publish(&keys(1, &["k"])).await,
        Err(CacheError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_used_and_never_printed() {
    const PASSWORD: &str = "bp-s3cret";
    let server = RedisServer::builder().password(PASSWORD).start();
    let url = server
        .url()
        .replace("redis://", &format!("redis://:{PASSWORD}@"));
    let backplane = RedisBackplane::for_cache(&cache(&url, "pw:"));
    let mut subscription = backplane.subscribe();
    active(&mut subscription).await;
    let message = keys(1, &["k"]);
    backplane.publish(&message).await.unwrap();
    assert_eq!(next(&mut subscription).await, Event::Message(message));
    let printed = format!("{backplane:?}");
    assert!(printed.contains("cache-invalidate:pw:"), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");

    // A wrong password: nothing becomes active, and the error says nothing of it.
    let wrong = RedisBackplane::for_cache(&cache(
        &server.url().replace("redis://", "redis://:wr0ng-pw@"),
        "pw:",
    ));
    let mut refused = wrong.subscribe();
    let quiet = tokio::time::timeout(Duration::from_millis(500), refused.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    let err = wrong.publish(&keys(1, &["k"])).await.unwrap_err();
    let printed = format!("{err} {err:?} {wrong:?}");
    assert!(!printed.contains("wr0ng-pw"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_message_published_via_one_node_reaches_a_subscription_on_another() {
    let _serial = SERIAL.lock().await;
    let mut cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let publisher = RedisBackplane::for_cache(&cache(&cluster.url(), "bp:"));
    let channel = publisher.channel().to_owned();
    // PUBLISH goes to the node that serves the channel name's slot.
    let publishing_node = cluster.primary_for_slot(key_slot(&channel));
    // The subscriber knows one node only, a replica: it subscribes there.
    let replica = cluster.replica_ports()[0];
    let subscriber_cache = RedisCache::builder()
        .cluster_nodes([cluster.node_on(replica).url()])
        .namespace("bp:")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let subscriber = RedisBackplane::for_cache(&subscriber_cache);
    let mut subscription = subscriber.subscribe();
    active(&mut subscription).await;
    let replica_url = cluster.node_on(replica).url();
    assert_eq!(subscribers(&replica_url, &channel).await, 1);
    let publishing_url = cluster.node_on(publishing_node).url();
    assert_eq!(subscribers(&publishing_url, &channel).await, 0);

    let publishes_before = published(&cluster, publishing_node);
    for n in 0..3 {
        let message = keys(n, &["k", &format!("key-{n}")]);
        publisher.publish(&message).await.unwrap();
        assert_eq!(next(&mut subscription).await, Event::Message(message));
    }
    assert_eq!(published(&cluster, publishing_node), publishes_before + 3);

    // The node it subscribed on dies: it subscribes on another one and says `Lost`.
    cluster.kill_node(replica);
    let killed = Instant::now();
    assert_eq!(next(&mut subscription).await, Event::Lost);
    eprintln!(
        "subscribed again on another node {:?} after the kill",
        killed.elapsed()
    );
    let message = keys(9, &["after the kill"]);
    publisher.publish(&message).await.unwrap();
    assert_eq!(next(&mut subscription).await, Event::Message(message));
}

/// How many `PUBLISH` commands the node on `port` has run.
fn published(cluster: &RedisCluster, port: u16) -> u64 {
    let stats = cluster.cli(port, &["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_publish:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinels_the_subscription_follows_a_failover() {
    let _serial = SERIAL.lock().await;
    let sentinels = tokio::task::spawn_blocking(RedisSentinels::start)
        .await
        .unwrap();
    let url = sentinels.url();
    let publisher = RedisBackplane::for_cache(&cache(&url, "bp:"));
    let subscriber = RedisBackplane::for_cache(&cache(&url, "bp:"));
    let channel = publisher.channel().to_owned();
    let mut subscription = subscriber.subscribe();
    active(&mut subscription).await;
    let old_master = sentinels.master_port();
    let old_url = sentinels.data_node(old_master).url();
    assert_eq!(subscribers(&old_url, &channel).await, 1);
    let message = keys(1, &["before"]);
    publisher.publish(&message).await.unwrap();
    assert_eq!(next(&mut subscription).await, Event::Message(message));

    let took = tokio::task::block_in_place(|| sentinels.failover());
    let switched = Instant::now();
    let new_master = sentinels.master_port();
    assert_ne!(old_master, new_master);
    eprintln!("SENTINEL FAILOVER switched masters in {took:?}");

    // A message published after the switch reaches the subscriber.
    let reached = probe(&publisher, &mut subscription, "after-switch").await;
    eprintln!(
        "a message published after the switch arrived {:?} after it",
        switched.elapsed()
    );
    assert!(reached < WITHIN);
    // The subscription moved to the new master, and hears what is published there.
    let new_url = sentinels.data_node(new_master).url();
    assert!(eventually(async || subscribers(&new_url, &channel).await == 1).await);
    probe(&publisher, &mut subscription, "on-new-master").await;
}

/// Publishes a message whose key starts with `prefix` every 100 ms (the publisher may still
/// be on a master that was demoted, or failing over to the new one) until `subscription`
/// hears one, within [`WITHIN`]; returns how long that took. Other events are skipped.
async fn probe(
    publisher: &RedisBackplane,
    subscription: &mut Subscription,
    prefix: &str,
) -> Duration {
    let started = Instant::now();
    let mut n = 0;
    loop {
        assert!(
            started.elapsed() < WITHIN,
            "no {prefix} message arrived within {WITHIN:?}"
        );
        n += 1;
        // Failures while the publisher follows the switch are expected.
        let _ = publisher
            .publish(&keys(2, &[&format!("{prefix}-{n}")]))
            .await;
        let heard = tokio::time::timeout(Duration::from_millis(100), async {
            loop {
                match subscription.next().await {
                    Some(Event::Message(Message {
                        invalidation: Invalidation::Keys(keys),
                        ..
                    })) if keys.first().is_some_and(|key| key.starts_with(prefix)) => return,
                    Some(_) => {}
                    None => panic!("the subscription ended"),
                }
            }
        })
        .await;
        if heard.is_ok() {
            return started.elapsed();
        }
    }
}
