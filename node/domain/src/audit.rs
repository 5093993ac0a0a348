//! The audit history in memory: each school's entries in sealed, compressed blocks of
//! [`BLOCK_ENTRIES`] plus an open tail.
//!
//! Audit entries are the largest part of the state (every change writes one, with the object
//! before and after as JSON) and are never changed once written, and almost never read: an
//! admin's history page, an object's history. So they are kept as zstd-compressed blocks, about a
//! tenth of their size as structs. A block is shared (`Arc`), so copying the state for a snapshot
//! or a backup copies pointers. The representation is not a format: the records of the state are
//! the entries themselves, one per key, as before.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::model::{AuditEntry, TenantId, UserId};

/// Entries per sealed block: large enough to compress well (entries repeat their keys, names and
/// JSON shapes), small enough that reading the newest few decompresses little.
const BLOCK_ENTRIES: usize = 256;
/// zstd's fastest level: a block is sealed on every replica as it fills.
const ZSTD_LEVEL: i32 = 1;

/// The audit history of every school.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditLog {
    tenants: BTreeMap<TenantId, TenantAudit>,
}

/// One school's history: sealed blocks, oldest first, then the newest entries.
#[derive(Debug, Clone, Default)]
struct TenantAudit {
    sealed: Vec<Arc<Block>>,
    open: Vec<Arc<AuditEntry>>,
    /// The kinds of object the history mentions, for the history page's filter.
    kinds: BTreeSet<String>,
    /// How many entries it holds.
    count: usize,
}

/// Entries in id order, compressed.
#[derive(Debug)]
struct Block {
    last_id: u64,
    /// The largest object id an entry of the block is about: the entries about an object created
    /// after it are not in the block.
    max_object_id: u64,
    bytes: Box<[u8]>,
}

impl Block {
    fn seal(entries: &[Arc<AuditEntry>]) -> Block {
        let plain: Vec<&AuditEntry> = entries.iter().map(|e| &**e).collect();
        let encoded = bincode::serialize(&plain).expect("audit entries serialize");
        let bytes = zstd::bulk::compress(&encoded, ZSTD_LEVEL).expect("zstd compresses in memory");
        Block {
            last_id: entries.last().map_or(0, |e| e.id),
            max_object_id: entries.iter().map(|e| e.object_id).max().unwrap_or(0),
            bytes: bytes.into_boxed_slice(),
        }
    }

    fn entries(&self) -> Vec<AuditEntry> {
        // Sealed from at most BLOCK_ENTRIES entries of bounded size: a block that does not
        // decode is memory corruption, not input.
        let plain = zstd::stream::decode_all(&self.bytes[..]).expect("a sealed block decompresses");
        bincode::deserialize(&plain).expect("a sealed block decodes")
    }
}

impl TenantAudit {
    fn insert(&mut self, entry: AuditEntry) {
        if !self.kinds.contains(&entry.object) {
            self.kinds.insert(entry.object.clone());
        }
        let last = self
            .open
            .last()
            .map(|e| e.id)
            .or(self.sealed.last().map(|b| b.last_id));
        if last.is_some_and(|last| entry.id <= last) {
            return self.insert_out_of_order(entry);
        }
        self.open.push(Arc::new(entry));
        self.count += 1;
        self.seal_if_full();
    }

    /// An entry older than the newest: records loaded in an order other than by id. Goes into
    /// the block whose range it falls before the end of (resealed), or into the tail; an entry
    /// with an id already held replaces it.
    fn insert_out_of_order(&mut self, entry: AuditEntry) {
        let at = self.sealed.partition_point(|b| b.last_id < entry.id);
        let mut entries: Vec<Arc<AuditEntry>> = match self.sealed.get(at) {
            Some(block) => block.entries().into_iter().map(Arc::new).collect(),
            None => std::mem::take(&mut self.open),
        };
        match entries.binary_search_by_key(&entry.id, |e| e.id) {
            Ok(i) => entries[i] = Arc::new(entry),
            Err(i) => {
                entries.insert(i, Arc::new(entry));
                self.count += 1;
            }
        }
        if at < self.sealed.len() {
            self.sealed[at] = Arc::new(Block::seal(&entries));
        } else {
            self.open = entries;
            self.seal_if_full();
        }
    }

    fn seal_if_full(&mut self) {
        if self.open.len() >= BLOCK_ENTRIES {
            self.sealed.push(Arc::new(Block::seal(&self.open)));
            self.open.clear();
        }
    }

    /// Entries newest first, decompressing a block only when the reader gets to it; `from_object`
    /// skips the blocks that hold nothing about objects with that id or newer.
    fn newest_first(&self, from_object: u64) -> impl Iterator<Item = Arc<AuditEntry>> + '_ {
        let open = self.open.iter().rev().cloned();
        let sealed = (self.sealed.iter().rev())
            .filter(move |b| b.max_object_id >= from_object)
            .flat_map(|b| b.entries().into_iter().rev().map(Arc::new));
        open.chain(sealed)
    }

    fn oldest_first(&self) -> impl Iterator<Item = Arc<AuditEntry>> + '_ {
        let sealed = (self.sealed.iter()).flat_map(|b| b.entries().into_iter().map(Arc::new));
        sealed.chain(self.open.iter().cloned())
    }

    fn len(&self) -> usize {
        self.count
    }
}

impl AuditLog {
    pub(crate) fn insert(&mut self, entry: AuditEntry) {
        self.tenants.entry(entry.tenant).or_default().insert(entry);
    }

    /// Every entry of every school, by school, oldest first (for the state's records).
    pub(crate) fn all(&self) -> impl Iterator<Item = Arc<AuditEntry>> + '_ {
        self.tenants.values().flat_map(TenantAudit::oldest_first)
    }

    /// A school's entries, oldest first.
    pub(crate) fn of_tenant(&self, tenant: TenantId) -> impl Iterator<Item = Arc<AuditEntry>> + '_ {
        self.tenants
            .get(&tenant)
            .into_iter()
            .flat_map(TenantAudit::oldest_first)
    }

    /// A school's entries newest first, optionally about one object or by one user, at most
    /// `limit`, and only those `keep` accepts.
    pub(crate) fn newest(
        &self,
        tenant: TenantId,
        object: Option<(&str, u64)>,
        user: Option<UserId>,
        limit: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Vec<AuditEntry> {
        let Some(t) = self.tenants.get(&tenant) else {
            return Vec::new();
        };
        t.newest_first(object.map_or(0, |(_, id)| id))
            .filter(|a| object.is_none_or(|(k, id)| a.object == k && a.object_id == id))
            .filter(|a| user.is_none_or(|u| a.user == Some(u)))
            .filter(|a| keep(a))
            .take(limit)
            .map(Arc::unwrap_or_clone)
            .collect()
    }

    /// The kinds of object a school's history mentions, in order.
    pub(crate) fn kinds(&self, tenant: TenantId) -> Vec<String> {
        (self.tenants.get(&tenant)).map_or_else(Vec::new, |t| t.kinds.iter().cloned().collect())
    }

    /// How many entries a school's history holds.
    #[cfg(test)]
    fn len_of(&self, tenant: TenantId) -> usize {
        self.tenants.get(&tenant).map_or(0, TenantAudit::len)
    }
}

/// Equal when they hold the same entries, however they are cut into blocks.
impl PartialEq for AuditLog {
    fn eq(&self, other: &Self) -> bool {
        self.tenants.len() == other.tenants.len()
            && self
                .tenants
                .iter()
                .zip(&other.tenants)
                .all(|((a, x), (b, y))| {
                    a == b && x.len() == y.len() && x.oldest_first().eq(y.oldest_first())
                })
    }
}

impl Eq for AuditLog {}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    fn entry(id: u64, tenant: TenantId, object_id: u64) -> AuditEntry {
        AuditEntry {
            id,
            tenant,
            at: Timestamp::from_second(1_800_000_000 + id as i64).unwrap(),
            actor: "token:admin".into(),
            user: id.is_multiple_of(3).then_some(7),
            object: if id.is_multiple_of(2) {
                "booking"
            } else {
                "room"
            }
            .into(),
            object_id,
            action: "create".into(),
            before: None,
            after: Some(format!("{{\"id\":{object_id},\"title\":\"Entry {id}\"}}")),
        }
    }

    #[test]
    fn blocks_keep_every_entry_in_order_and_answer_queries() {
        let mut log = AuditLog::default();
        let n = BLOCK_ENTRIES as u64 * 3 + 17;
        for id in 1..=n {
            log.insert(entry(id, 1 + id % 2, id));
        }
        assert_eq!(log.len_of(1) + log.len_of(2), n as usize);
        let ids: Vec<u64> = log.of_tenant(1).map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids.len(), log.len_of(1));
        let newest = log.newest(2, None, None, 5, |_| true);
        let want: Vec<u64> = (1..=n).rev().filter(|i| i % 2 == 1).take(5).collect();
        assert_eq!(newest.iter().map(|e| e.id).collect::<Vec<_>>(), want);
        // One old object's history is found behind many newer blocks.
        let about = log.newest(2, Some(("room", 3)), None, 10, |_| true);
        assert_eq!(about.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3]);
        let by_user = log.newest(1, None, Some(7), usize::MAX, |_| true);
        assert!(by_user.iter().all(|e| e.user == Some(7) && e.tenant == 1));
        assert_eq!(
            by_user.len(),
            (1..=n).filter(|i| i % 2 == 0 && i % 3 == 0).count()
        );
        assert_eq!(log.kinds(1), vec!["booking".to_string()]);
    }

    #[test]
    fn any_insertion_order_gives_the_same_log() {
        let n = BLOCK_ENTRIES as u64 * 2 + 5;
        let mut in_order = AuditLog::default();
        for id in 1..=n {
            in_order.insert(entry(id, 1, id));
        }
        let mut shuffled = AuditLog::default();
        // A fixed permutation: odd ids ascending, then even ids descending.
        let odd = (1..=n).filter(|i| i % 2 == 1);
        let even = (1..=n).rev().filter(|i| i % 2 == 0);
        for id in odd.chain(even) {
            shuffled.insert(entry(id, 1, id));
        }
        assert!(in_order == shuffled);
        let ids: Vec<u64> = shuffled.of_tenant(1).map(|e| e.id).collect();
        assert_eq!(ids, (1..=n).collect::<Vec<_>>());
        // The same id again replaces the entry rather than adding one.
        shuffled.insert(entry(4, 1, 4));
        assert_eq!(shuffled.len_of(1), n as usize);
    }
}
