use cache_core::CacheError;
use redis::{ConnectionAddr, ConnectionInfo, ProtocolVersion};

use super::*;

const PASSWORD: &str = "s3cr3t-pw";

fn reason(url: &str) -> String {
    match topology(url) {
        Err(CacheError::InvalidConfig { reason, .. }) => reason,
        other => panic!("{url}: expected InvalidConfig, got {other:?}"),
    }
}

fn cluster(url: &str) -> Vec<ConnectionInfo> {
    match topology(url) {
        Ok(Topology::Cluster(nodes)) => nodes,
        other => panic!("{url}: expected a cluster, got {other:?}"),
    }
}

/// Host and port of a plain TCP address.
fn tcp(info: &ConnectionInfo) -> (&str, u16) {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => (host.as_str(), *port),
        other => panic!("expected a plain TCP address, got {other:?}"),
    }
}

#[test]
fn a_cluster_url_gives_every_seed_node_with_the_urls_settings() {
    let nodes = cluster("redis+cluster://10.0.0.1:7000,cache.internal,[::1]:7002");
    let addresses: Vec<_> = nodes.iter().map(tcp).collect();
    assert_eq!(
        addresses,
        [("10.0.0.1", 7000), ("cache.internal", 6379), ("::1", 7002)]
    );
    for node in &nodes {
        let redis = node.redis_settings();
        assert_eq!(
            (redis.db(), redis.username(), redis.password()),
            (0, None, None)
        );
        assert_eq!(redis.protocol(), ProtocolVersion::RESP2);
    }

    let url = format!("redis+cluster://app:{PASSWORD}@h1,h2:7001/0?protocol=resp3");
    let nodes = cluster(&url);
    assert_eq!(nodes.len(), 2);
    for node in &nodes {
        let redis = node.redis_settings();
        assert_eq!(redis.db(), 0);
        assert_eq!(redis.username(), Some("app"));
        assert_eq!(redis.password(), Some(PASSWORD));
        assert_eq!(redis.protocol(), ProtocolVersion::RESP3);
    }
    for url in [
        "REDIS+CLUSTER://h",
        "redis+cluster://h/",
        "redis+cluster://h/0/",
        " redis+cluster://h\n",
    ] {
        assert_eq!(
            cluster(url).iter().map(tcp).collect::<Vec<_>>(),
            [("h", 6379)]
        );
    }
}

#[test]
fn the_user_info_is_percent_decoded_and_runs_to_the_last_at_before_the_path() {
    let cases = [
        ("app:s3cr3t%40pw%3A%2F", Some("app"), Some("s3cr3t@pw:/")),
        ("%61pp:s3cr3t%2Dpw", Some("app"), Some(PASSWORD)),
        ("app:p@ss?w#rd", Some("app"), Some("p@ss?w#rd")),
        ("app:100%", Some("app"), Some("100%")),
        (":s3cr3t-pw", None, Some(PASSWORD)),
        ("app", Some("app"), None),
        ("app:", Some("app"), None),
        ("", None, None),
    ];
    for (userinfo, username, password) in cases {
        let url = format!("redis+cluster://{userinfo}@h:7000");
        let node = &cluster(&url)[0];
        assert_eq!(tcp(node), ("h", 7000), "{userinfo}");
        let redis = node.redis_settings();
        assert_eq!(
            (redis.username(), redis.password()),
            (username, password),
            "{userinfo}"
        );
    }
    // After the first `/`, an `@` is the master name's.
    let Ok(Topology::Sentinel { master_name, .. }) = topology("redis+sentinel://h/m@ster") else {
        panic!("an @ in the master name parses")
    };
    assert_eq!(master_name, "m@ster");
}

#[test]
fn a_sentinel_url_gives_the_sentinels_without_and_the_data_nodes_with_credentials() {
    let url =
        format!("redis+sentinel://app:{PASSWORD}@10.0.0.1,[fe80::1]:26380/mymaster/2?protocol=3");
    let Ok(Topology::Sentinel {
        master_name,
        sentinels,
        node,
        tls,
    }) = topology(&url)
    else {
        panic!("{url} parses as sentinel")
    };
    assert_eq!(master_name, "mymaster");
    let addresses: Vec<_> = sentinels.iter().map(tcp).collect();
    assert_eq!(addresses, [("10.0.0.1", 26379), ("fe80::1", 26380)]);
    for sentinel in &sentinels {
        let redis = sentinel.redis_settings();
        assert_eq!(
            (redis.db(), redis.username(), redis.password()),
            (0, None, None)
        );
    }
    assert_eq!(node.db(), 2);
    assert_eq!(node.username(), Some("app"));
    assert_eq!(node.password(), Some(PASSWORD));
    assert_eq!(node.protocol(), ProtocolVersion::RESP3);
    assert!(!tls);

    for (url, name, db) in [
        ("redis+sentinel://h/mymaster", "mymaster", 0),
        ("redis+sentinel://h/mymaster/", "mymaster", 0),
        ("Redis+Sentinel://h/my%20master/3/", "my master", 3),
    ] {
        let Ok(Topology::Sentinel {
            master_name, node, ..
        }) = topology(url)
        else {
            panic!("{url} parses as sentinel")
        };
        assert_eq!((master_name.as_str(), node.db()), (name, db), "{url}");
        assert_eq!(node.protocol(), ProtocolVersion::RESP2, "{url}");
    }
}

#[test]
fn single_server_urls_are_read_as_before() {
    for url in [
        "redis://h:6380/2",
        "valkey://h",
        "redis+unix:///run/redis.sock?db=1",
    ] {
        assert!(matches!(topology(url), Ok(Topology::Single(_))), "{url}");
    }
    let Ok(Topology::Single(info)) = topology("redis://app:pw@h:6380/2") else {
        panic!("a redis:// url is one server")
    };
    assert_eq!(tcp(&info), ("h", 6380));
    assert_eq!(info.redis_settings().db(), 2);
    // Errors are the single form's, which now lists the multi-server forms too.
    let reason = reason("http://h:6379");
    assert!(reason.contains("scheme"), "{reason}");
    assert!(reason.contains("rediss+sentinel://"), "{reason}");
}

#[cfg(feature = "tls")]
#[test]
fn tls_forms_reach_every_server_over_tls() {
    let nodes = cluster("rediss+cluster://h1:7000,h2");
    assert_eq!(nodes.len(), 2);
    for node in &nodes {
        assert!(
            matches!(
                node.addr(),
                ConnectionAddr::TcpTls {
                    insecure: false,
                    ..
                }
            ),
            "{:?}",
            node.addr()
        );
    }
    let Ok(Topology::Sentinel { sentinels, tls, .. }) = topology("rediss+sentinel://h/m") else {
        panic!("rediss+sentinel parses")
    };
    assert!(tls);
    assert!(matches!(
        sentinels[0].addr(),
        ConnectionAddr::TcpTls { host, port: 26379, insecure: false, .. } if host == "h"
    ));
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_forms_name_the_missing_feature() {
    for url in ["rediss+cluster://h:7000", "rediss+sentinel://h/m"] {
        assert!(
            reason(url).contains("`tls` feature"),
            "{url}: {}",
            reason(url)
        );
    }
}

#[test]
fn a_bad_entry_of_the_host_list_is_named_by_its_place_and_part() {
    let cases = [
        (
            "redis+cluster://h1:7000,h2:notaport",
            "the 2nd node",
            "port",
        ),
        ("redis+cluster://h1:7000,h2:99999", "the 2nd node", "port"),
        ("redis+cluster://h:0", "the 1st node", "port"),
        ("redis+cluster://h:-1", "the 1st node", "port"),
        ("redis+cluster://h:+1", "the 1st node", "port"),
        ("redis+cluster://h:", "the 1st node", "port"),
        ("redis+cluster://[::1]x", "the 1st node", "port"),
        ("redis+cluster://h1,,h3", "the 2nd node", "empty"),
        ("redis+cluster://h1,", "the 2nd node", "empty"),
        ("redis+cluster://h1,bad host", "the 2nd node", "host"),
        ("redis+cluster://h1,h2,:7000", "the 3rd node", "no host"),
        ("redis+cluster://::1", "the 1st node", "host"),
        ("redis+cluster://[::1:7000", "the 1st node", "host"),
        ("redis+cluster://[nope]:7000", "the 1st node", "host"),
        ("redis+cluster://0.0.0.0:7000", "the 1st node", "wildcard"),
        ("redis+cluster://[::]:7000", "the 1st node", "wildcard"),
        (
            "redis+sentinel://h1,h2,h3,h4:x/m",
            "the 4th sentinel",
            "port",
        ),
        (
            "rediss+sentinel://h1,h2,h3,h4:x/m",
            "the 4th sentinel",
            "port",
        ),
    ];
    for (url, place, part) in cases {
        if url.starts_with("rediss") && !cfg!(feature = "tls") {
            continue;
        }
        let reason = reason(url);
        assert!(reason.contains(place), "{url}: {reason}");
        assert!(reason.contains(part), "{url}: {reason}");
    }
    for url in [
        "redis+cluster://",
        "redis+cluster:///0",
        "redis+cluster://app:pw@",
        "redis+cluster://?protocol=3",
    ] {
        assert!(
            reason(url).contains("names no node"),
            "{url}: {}",
            reason(url)
        );
    }
    assert!(reason("redis+sentinel:///m").contains("names no sentinel"));
}

#[test]
fn ordinals_read_as_english() {
    let words: Vec<_> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112]
        .into_iter()
        .map(ordinal)
        .collect();
    assert_eq!(
        words,
        [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st",
            "111th", "112th"
        ]
    );
}

#[test]
fn a_cluster_url_with_a_database_other_than_0_is_refused() {
    for url in [
        "redis+cluster://h/3",
        "redis+cluster://h:7000/x",
        "redis+cluster://h/0/1",
    ] {
        assert!(reason(url).contains("only db 0"), "{url}: {}", reason(url));
    }
}

#[test]
fn a_sentinel_url_needs_a_master_name_and_takes_a_database() {
    for url in [
        "redis+sentinel://h",
        "redis+sentinel://h/",
        "redis+sentinel://h?protocol=3",
        "redis+sentinel://h//2",
    ] {
        assert!(
            reason(url).contains("no master name"),
            "{url}: {}",
            reason(url)
        );
    }
    for url in [
        "redis+sentinel://h/m/x",
        "redis+sentinel://h/m/-1",
        "redis+sentinel://h/m/1.5",
    ] {
        assert!(reason(url).contains("database"), "{url}: {}", reason(url));
    }
    assert!(reason("redis+sentinel://h/m/1/2").contains("more than /master_name/db"));
    assert!(reason("redis+sentinel://h/%ff").contains("master name"));
}

#[test]
fn the_query_takes_only_the_protocol_and_there_is_no_fragment() {
    let cases = [
        ("redis+cluster://h?db=2", "`db`"),
        ("redis+cluster://h?protocol=3&pass=x", "`pass`"),
        ("redis+cluster://h?=3", "unknown query parameter;"),
        ("redis+sentinel://h/m?protocol=4", "protocol"),
        ("redis+cluster://h#insecure", "fragment"),
        ("redis+sentinel://h/m#", "fragment"),
        ("redis+cluster:h:7000", "//"),
        ("redis+cluster://%ff@h", "user name"),
        ("redis+cluster://app:%ff@h", "password"),
    ];
    for (url, part) in cases {
        let reason = reason(url);
        assert!(reason.contains(part), "{url}: {reason}");
    }
}

#[test]
fn no_error_or_debug_output_repeats_the_password() {
    let spellings = [PASSWORD, "s3cr3t%2Dpw", "%73%33%63%72%33%74-pw"];
    let failing = [
        "redis+cluster://app:{pw}@h1:7000,h2:x",
        "redis+cluster://app:{pw}@h1,,h3",
        "redis+cluster://app:{pw}@h1,bad host",
        "redis+cluster://app:{pw}@0.0.0.0",
        "redis+cluster://app:{pw}@",
        "redis+cluster://app:{pw}@h/3",
        "redis+cluster://app:{pw}@h?db=1",
        "redis+cluster://app:{pw}@h?protocol=9",
        "redis+cluster://app:{pw}@h#insecure",
        "redis+cluster://%ff:{pw}@h",
        "redis+cluster:app:{pw}@h",
        "redis+sentinel://app:{pw}@h",
        "redis+sentinel://app:{pw}@h/m/x",
        "redis+sentinel://app:{pw}@h/m/1/2",
        "redis+sentinel://app:{pw}@h:99999/m",
        // A password with an unencoded `/`: the rest is read as path and query, and the query
        // (no name-like parameter) is not repeated.
        "redis+sentinel://app:1/{pw}?x@h:26379/m",
        "redis+cluster://{pw}:x@h:0",
        "redis+clusterr://app:{pw}@h",
        "redis://app:{pw}@h:99999",
    ];
    for template in failing {
        for spelling in spellings {
            let url = template.replace("{pw}", spelling);
            let err = topology(&url).expect_err(&url);
            for text in [err.to_string(), format!("{err:?}")] {
                for secret in spellings {
                    assert!(!text.contains(secret), "{url}: {text}");
                }
                assert!(!text.contains("s3cr3t"), "{url}: {text}");
            }
        }
    }
    let url = format!("redis+sentinel://app:{PASSWORD}@h/m");
    let debug = format!("{:?}", topology(&url).unwrap());
    assert!(!debug.contains(PASSWORD), "{debug}");
    let url = format!("redis+cluster://app:{PASSWORD}@h1,h2");
    let debug = format!("{:?}", topology(&url).unwrap());
    assert!(!debug.contains(PASSWORD), "{debug}");
}
