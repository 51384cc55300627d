//! What the nodes of a cluster say about it (`CLUSTER NODES`, `CLUSTER INFO`), merged into
//! one picture of the current roles and slot owners.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::resp::{Target, call_text, info_field};

/// How many hash slots a Redis Cluster has.
pub(crate) const SLOTS: usize = 16_384;

/// One line of `CLUSTER NODES`: what one node says about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeLine {
    pub(crate) id: String,
    /// 0 while the node's address is unknown (`noaddr`, early handshake).
    pub(crate) port: u16,
    pub(crate) flags: Vec<String>,
    /// The id of its primary, for a replica.
    pub(crate) primary_id: Option<String>,
    pub(crate) config_epoch: u64,
    /// The slot ranges it serves, inclusive (not the migrating/importing markers).
    pub(crate) slots: Vec<(u16, u16)>,
}

impl NodeLine {
    pub(crate) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub(crate) fn is_primary(&self) -> bool {
        self.has_flag("master")
    }

    pub(crate) fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }

    /// The role and primary it has, to compare views.
    fn role(&self) -> (bool, Option<&str>) {
        (self.is_primary(), self.primary_id.as_deref())
    }
}

/// Parses `CLUSTER NODES` output.
pub(crate) fn parse_nodes(text: &str) -> Result<Vec<NodeLine>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| parse_line(line).ok_or_else(|| format!("cannot parse the line {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    // `127.0.0.1:30001@40001[,hostname]`, or `:0@0` while unknown.
    let address = fields[1].split(['@', ',']).next()?;
    let port = address.rsplit_once(':')?.1.parse().ok()?;
    let slots = fields[8..]
        .iter()
        .filter(|f| !f.starts_with('['))
        .map(|f| match f.split_once('-') {
            Some((start, end)) => Some((start.parse().ok()?, end.parse().ok()?)),
            None => f.parse().ok().map(|slot| (slot, slot)),
        })
        .collect::<Option<_>>()?;
    Some(NodeLine {
        id: fields[0].to_owned(),
        port,
        flags: fields[2].split(',').map(str::to_owned).collect(),
        primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
        config_epoch: fields[6].parse().ok()?,
        slots,
    })
}

/// What one node said: its `CLUSTER NODES` and its `CLUSTER INFO`.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The port of the node that said it.
    pub(crate) port: u16,
    pub(crate) nodes: Vec<NodeLine>,
    pub(crate) info: String,
}

impl View {
    /// Asks the node at `target`.
    pub(crate) fn ask(target: &Target, password: Option<&str>) -> Result<View, String> {
        let nodes = parse_nodes(&call_text(target, password, &["CLUSTER", "NODES"])?)
            .map_err(|e| format!("{target} CLUSTER NODES: {e}"))?;
        let info = call_text(target, password, &["CLUSTER", "INFO"])?;
        Ok(View {
            port: target.port(),
            nodes,
            info,
        })
    }

    /// The node's line about itself.
    pub(crate) fn myself(&self) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.has_flag("myself"))
    }

    /// Its line about the node with `id`.
    pub(crate) fn line(&self, id: &str) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// `cluster_state:ok`.
    pub(crate) fn state_ok(&self) -> bool {
        info_field(&self.info, "cluster_state") == Some("ok")
    }

    /// A short reason why this node does not see a healthy cluster of `ids`, whose live
    /// members report the roles in `roles`; `None` if it does.
    pub(crate) fn unhealthy(&self, ids: &[String], live_roles: &[&NodeLine]) -> Option<String> {
        let port = self.port;
        if !self.state_ok() {
            return Some(format!("127.0.0.1:{port} reports cluster_state:fail"));
        }
        let slots_ok = info_field(&self.info, "cluster_slots_ok");
        if slots_ok != Some(&SLOTS.to_string()) {
            return Some(format!(
                "127.0.0.1:{port} sees {} of {SLOTS} slots served",
                slots_ok.unwrap_or("?")
            ));
        }
        for id in ids {
            let Some(line) = self.line(id) else {
                return Some(format!("127.0.0.1:{port} does not know node {id} yet"));
            };
            if ["handshake", "noaddr"].iter().any(|f| line.has_flag(f)) {
                return Some(format!(
                    "127.0.0.1:{port} sees 127.0.0.1:{} as {}",
                    line.port,
                    line.flags.join(",")
                ));
            }
        }
        for own in live_roles {
            let Some(line) = self.line(&own.id) else {
                continue;
            };
            if line.role() != own.role() || ["fail", "fail?"].iter().any(|f| line.has_flag(f)) {
                return Some(format!(
                    "127.0.0.1:{port} sees 127.0.0.1:{} as {} (of {}), which says it is {} \
                     (of {})",
                    own.port,
                    line.flags.join(","),
                    line.primary_id.as_deref().unwrap_or("-"),
                    own.flags.join(","),
                    own.primary_id.as_deref().unwrap_or("-"),
                ));
            }
        }
        None
    }

    /// The port of the node this view gives `slot` to, if any.
    pub(crate) fn owner(&self, slot: u16) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .map(|n| n.port)
    }
}

/// The views of every node that answered, merged.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    pub(crate) views: Vec<View>,
}

impl Topology {
    /// The owner of each slot: the claim with the highest config epoch in any view (the
    /// rule Redis itself applies, so a view that missed a failover or a reshard is
    /// overruled).
    pub(crate) fn slot_owners(&self) -> Vec<Option<u16>> {
        let mut best: Vec<Option<(u64, u16)>> = vec![None; SLOTS];
        for view in &self.views {
            for node in view.nodes.iter().filter(|n| n.is_primary()) {
                for &(start, end) in &node.slots {
                    for slot in start..=end {
                        let claim = &mut best[usize::from(slot) % SLOTS];
                        if claim.is_none_or(|(epoch, _)| node.config_epoch > epoch) {
                            *claim = Some((node.config_epoch, node.port));
                        }
                    }
                }
            }
        }
        best.into_iter()
            .map(|claim| claim.map(|(_, port)| port))
            .collect()
    }

    /// The node with `id` as it sees itself if it answered, else as most others see it.
    pub(crate) fn node(&self, id: &str) -> Option<NodeLine> {
        if let Some(own) = self
            .views
            .iter()
            .filter_map(View::myself)
            .find(|n| n.id == id)
        {
            return Some(own.clone());
        }
        let mut votes: HashMap<(bool, Option<&str>), (usize, &NodeLine)> = HashMap::new();
        for line in self.views.iter().filter_map(|v| v.line(id)) {
            votes.entry(line.role()).or_insert((0, line)).0 += 1;
        }
        votes
            .into_values()
            .max_by_key(|(count, _)| *count)
            .map(|(_, line)| line.clone())
    }
}

/// The hash slot (0 to 16383) of `key`, as Redis Cluster computes it: CRC16 of the key, or
/// of its hash tag (the text between the first `{` and the next `}`, if not empty).
///
/// ```
/// use redis_test_server::key_slot;
///
/// assert_eq!(key_slot("foo"), 12182);
/// assert_eq!(key_slot("{user:1}:name"), key_slot("user:1"));
/// ```
pub fn key_slot(key: impl AsRef<[u8]>) -> u16 {
    slot_of(key.as_ref())
}

/// A hash tag whose keys go to `slot`: every key containing `{tag}` (as its first braces)
/// hashes to it. The first call builds a table of all slots' tags (a few milliseconds).
///
/// ```
/// use redis_test_server::{hash_tag_for_slot, key_slot};
///
/// let tag = hash_tag_for_slot(42);
/// assert_eq!(key_slot(format!("{{{tag}}}:user:1")), 42);
/// ```
///
/// # Panics
///
/// If `slot` is not below 16384.
pub fn hash_tag_for_slot(slot: u16) -> String {
    static TAGS: OnceLock<Vec<u32>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        // The smallest number whose decimal text hashes to each slot (all are below
        // 110,000).
        let mut tags = vec![u32::MAX; SLOTS];
        let mut missing = SLOTS;
        for n in 0u32.. {
            let tag = &mut tags[usize::from(slot_of(n.to_string().as_bytes()))];
            if *tag == u32::MAX {
                *tag = n;
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        tags
    });
    let tag = tags
        .get(usize::from(slot))
        .unwrap_or_else(|| panic!("slot {slot} is not below {SLOTS}"));
    tag.to_string()
}

/// The hash slot of `key`: CRC16 (XMODEM) of the key, or of its hash tag (the text between
/// the first `{` and the next `}`, if not empty), modulo 16384.
fn slot_of(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let crc = hashed.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    });
    crc % SLOTS as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host,shard-id=69 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [10923->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,fail?,noaddr - 1426238316232 0 7 disconnected 5 7-9
";

    #[test]
    fn cluster_nodes_is_parsed() {
        let nodes = parse_nodes(NODES).unwrap();
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes[0].port, 30004);
        assert!(nodes[0].is_replica());
        assert_eq!(
            nodes[0].primary_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!(nodes[2].slots, [(10923, 16383)]);
        assert_eq!(nodes[2].config_epoch, 3);
        assert!(nodes[3].has_flag("myself") && nodes[3].is_primary());
        assert_eq!(nodes[4].port, 0);
        assert_eq!(nodes[4].slots, [(5, 5), (7, 9)]);
        assert!(parse_nodes("garbage line").is_err());
    }

    #[test]
    fn the_highest_epoch_owns_a_slot() {
        let old = parse_nodes(NODES).unwrap();
        let mut new = old.clone();
        // In the newer view, 30004 took over 30001's slots with epoch 8.
        new[0].flags = vec!["master".into()];
        new[0].primary_id = None;
        new[0].config_epoch = 8;
        new[0].slots = vec![(0, 5460)];
        new[3].slots.clear();
        let view = |port, nodes| View {
            port,
            nodes,
            info: String::new(),
        };
        let topology = Topology {
            views: vec![view(30001, old), view(30002, new)],
        };
        let owners = topology.slot_owners();
        assert_eq!(owners[0], Some(30004));
        assert_eq!(owners[5461], Some(30002));
        assert_eq!(owners[16383], Some(30003));
    }

    #[test]
    fn every_slot_has_a_hash_tag() {
        for slot in [0, 1, 42, 8191, 16383] {
            let tag = hash_tag_for_slot(slot);
            assert_eq!(key_slot(format!("{{{tag}}}")), slot);
            assert_eq!(key_slot(format!("a{{{tag}}}b{{c}}")), slot);
        }
    }

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` and the cluster specification.
        // The CRC16 check value of the XMODEM variant (below 16384, so its own slot).
        assert_eq!(slot_of(b"123456789"), 0x31C3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
        assert_eq!(slot_of(b""), 0);
    }
}
