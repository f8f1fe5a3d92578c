//! A simulated disk for redb that can lose power.
//!
//! The simulator runs the real redb code on top of [`SimDisk`] so that crash recovery is tested
//! against the storage engine we actually ship, not a model of it. The disk distinguishes what a
//! reader sees (every write so far) from what survives power loss (only what was covered by
//! `sync_data`), and [`SimDisk::crash`] throws the difference away, optionally leaving the last
//! unsynced write torn.
//!
//! Cost model: thousands of small commits on each of many simulated nodes, so a sync must not copy
//! the image. Instead the disk keeps an undo log holding the durable contents of each 4 KiB page
//! the first time it is modified after a sync. A sync just drops the log; a crash replays it.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// Granularity of the undo log. redb's default page size, so a typical page write saves exactly
/// one undo page.
const UNDO_PAGE: usize = 4096;

/// What happens to the last unsynced write when power is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TearMode {
    /// Every unsynced write is lost entirely.
    None,
    /// The last unsynced write reached the media only partially: its first
    /// `len * keep_fraction_per_mille / 1000` bytes survive, everything else unsynced is lost.
    /// Values above 1000 are treated as 1000 (the whole write survives).
    TearLastWrite {
        /// Surviving fraction of the last write, in thousandths.
        keep_fraction_per_mille: u16,
    },
}

/// Counters over the lifetime of a [`SimDisk`] (they survive crashes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Bytes passed to successful `write` calls.
    pub bytes_written: u64,
    /// Successful `sync_data` calls.
    pub syncs: u64,
    /// Successful `write` calls.
    pub writes: u64,
    /// Calls to [`SimDisk::crash`].
    pub crashes: u64,
    /// Crashes that applied a torn prefix of an unsynced write.
    pub torn_writes: u64,
    /// Current length of the image as readers see it.
    pub len_bytes: u64,
}

/// A simulated disk: a cheap-clone handle onto a shared image.
///
/// The simulator keeps one clone to inject crashes and hands another to redb as its
/// [`redb::StorageBackend`]; after a crash a fresh database is opened on another clone.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
}

/// The image and its durability bookkeeping.
///
/// Invariant: for every undo page overlapping `0..durable_len`, either `undo` holds its durable
/// bytes, or `current` still holds them unmodified (and is long enough to contain them). Every
/// mutation calls [`DiskState::preserve`] on the bytes it is about to change or drop, which keeps
/// the invariant; bytes beyond `current.len()` were preserved when they were truncated away.
#[derive(Default)]
struct DiskState {
    /// What reads see.
    current: Vec<u8>,
    /// Length of the image that survives a crash.
    durable_len: usize,
    /// Page index -> durable bytes of that page (truncated at `durable_len`), recorded on first
    /// modification since the last sync.
    undo: BTreeMap<usize, Box<[u8]>>,
    /// Offset of the last write since the last sync; its bytes are in `last_write_data`.
    last_write_offset: Option<usize>,
    /// Kept separately from the offset so the allocation is reused across writes.
    last_write_data: Vec<u8>,
    /// Set by `kill_io`: mutations fail until the next crash.
    dead: bool,
    /// Mutating operations still allowed before the disk dies on its own.
    kill_after: Option<u64>,
    stats: DiskStats,
}

impl fmt::Debug for DiskState {
    // Hand-written so that debug output never dumps the image.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskState")
            .field("len", &self.current.len())
            .field("durable_len", &self.durable_len)
            .field("undo_pages", &self.undo.len())
            .field("unsynced_last_write", &self.last_write_offset.is_some())
            .field("dead", &self.dead)
            .field("kill_after", &self.kill_after)
            .field("stats", &DiskStats { len_bytes: self.current.len() as u64, ..self.stats })
            .finish()
    }
}

fn dead_error() -> io::Error {
    io::Error::other("simulated disk: I/O is dead (node crashed)")
}

fn range_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("simulated disk: {what} out of range"))
}

/// Converts an offset/length pair into an in-memory range, rejecting overflow.
fn byte_range(offset: u64, len: usize, what: &str) -> io::Result<(usize, usize)> {
    let start = usize::try_from(offset).map_err(|_| range_error(what))?;
    let end = start.checked_add(len).ok_or_else(|| range_error(what))?;
    Ok((start, end))
}

impl DiskState {
    /// Gate for every mutation: fails once the disk is dead, and counts down an armed
    /// [`SimDisk::kill_io_after`].
    fn check_alive(&mut self) -> io::Result<()> {
        if self.dead {
            return Err(dead_error());
        }
        if let Some(remaining) = self.kill_after {
            if remaining == 0 {
                self.dead = true;
                self.kill_after = None;
                return Err(dead_error());
            }
            self.kill_after = Some(remaining - 1);
        }
        Ok(())
    }

    /// Records the durable contents of every page overlapping `start..end` that is about to be
    /// modified for the first time since the last sync. Bytes beyond `durable_len` need no undo:
    /// a crash truncates them.
    fn preserve(&mut self, start: usize, end: usize) {
        let end = end.min(self.durable_len);
        if start >= end {
            return;
        }
        for page in start / UNDO_PAGE..=(end - 1) / UNDO_PAGE {
            if let Entry::Vacant(slot) = self.undo.entry(page) {
                let page_start = page * UNDO_PAGE;
                let page_end = (page_start + UNDO_PAGE).min(self.durable_len);
                // In bounds by the struct invariant: an unlogged durable page is still in `current`.
                slot.insert(self.current[page_start..page_end].into());
            }
        }
    }
}

impl SimDisk {
    /// An empty disk with nothing durable.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic while holding the lock cannot leave the image half-updated in a way that matters
        // more than the panic itself (the test is already failing), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Models power loss: every write since the last `sync_data` is lost and the length returns
    /// to its durable value (zero-filled if it had shrunk). With [`TearMode::TearLastWrite`] a
    /// prefix of the last unsynced write survives; that prefix is clipped to the durable length,
    /// because the length change that would have made room for it was not synced either.
    ///
    /// Clears the dead flag (and any armed [`Self::kill_io_after`]): the node is restarting and
    /// the resulting image is, by definition, durable.
    pub fn crash(&self, tear: TearMode) {
        let mut s = self.lock();
        let s = &mut *s;
        let torn = match tear {
            TearMode::None => None,
            TearMode::TearLastWrite { keep_fraction_per_mille } => {
                s.last_write_offset.map(|offset| (offset, keep_fraction_per_mille.min(1000)))
            }
        };

        s.current.resize(s.durable_len, 0);
        for (page, bytes) in std::mem::take(&mut s.undo) {
            let page_start = page * UNDO_PAGE;
            // Undo pages never extend past `durable_len`, which is now `current.len()`.
            s.current[page_start..page_start + bytes.len()].copy_from_slice(&bytes);
        }

        if let Some((offset, keep_per_mille)) = torn {
            let data = &s.last_write_data;
            // u128 so that the multiplication cannot overflow; the result is <= data.len().
            let keep = (data.len() as u128 * u128::from(keep_per_mille) / 1000) as usize;
            let end = offset.saturating_add(keep).min(s.durable_len);
            if offset < end {
                s.current[offset..end].copy_from_slice(&data[..end - offset]);
            }
            s.stats.torn_writes += 1;
        }

        s.last_write_offset = None;
        s.last_write_data.clear();
        s.dead = false;
        s.kill_after = None;
        s.stats.crashes += 1;
    }

    /// Makes every subsequent `write`, `set_len` and `sync_data` fail until the next
    /// [`Self::crash`]. Used between a node's crash and its restart so that a `Database` being
    /// dropped cannot write (or promote non-durable commits) during teardown. Reads still work.
    pub fn kill_io(&self) {
        self.lock().dead = true;
    }

    /// Arms a power failure mid-operation: the next `ops` mutating calls (`write`, `set_len`,
    /// `sync_data`) succeed, and from then on the disk behaves as after [`Self::kill_io`]. This is
    /// how the simulator interrupts a commit half-way, which is where torn writes matter.
    pub fn kill_io_after(&self, ops: u64) {
        self.lock().kill_after = Some(ops);
    }

    /// Whether mutations currently fail (after [`Self::kill_io`] or an expired
    /// [`Self::kill_io_after`]).
    pub fn is_io_killed(&self) -> bool {
        self.lock().dead
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DiskStats {
        let s = self.lock();
        DiskStats { len_bytes: s.current.len() as u64, ..s.stats }
    }
}

impl redb::StorageBackend for SimDisk {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let s = self.lock();
        let (start, end) = byte_range(offset, out.len(), "read")?;
        let src = s.current.get(start..end).ok_or_else(|| range_error("read"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut s = self.lock();
        let len = usize::try_from(len).map_err(|_| range_error("set_len"))?;
        s.check_alive()?;
        let old_len = s.current.len();
        if len < old_len {
            s.preserve(len, old_len);
        }
        // Growth needs no undo: bytes past `old_len` inside the durable range were preserved when
        // they were truncated away.
        s.current.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut s = self.lock();
        s.check_alive()?;
        s.undo.clear();
        s.durable_len = s.current.len();
        s.last_write_offset = None;
        s.stats.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut s = self.lock();
        let s = &mut *s;
        let (start, end) = byte_range(offset, data.len(), "write")?;
        s.check_alive()?;
        s.preserve(start, end);
        // Like a file, writing past the end extends the image with zeros up to `start`.
        if end > s.current.len() {
            s.current.resize(end, 0);
        }
        s.current[start..end].copy_from_slice(data);
        s.last_write_offset = Some(start);
        s.last_write_data.clear();
        s.last_write_data.extend_from_slice(data);
        s.stats.writes += 1;
        s.stats.bytes_written += data.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, Durability, ReadableDatabase, StorageBackend, TableDefinition};

    const TABLE: TableDefinition<'_, u64, u64> = TableDefinition::new("t");

    fn read_all(disk: &SimDisk) -> Vec<u8> {
        let len = usize::try_from(disk.len().unwrap()).unwrap();
        let mut out = vec![0; len];
        disk.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn unsynced_writes_vanish_and_synced_survive() {
        let disk = SimDisk::new();
        disk.set_len(3 * 4096).unwrap();
        disk.write(100, &[1; 5000]).unwrap();
        disk.sync_data().unwrap();
        let durable = read_all(&disk);

        disk.write(0, &[2; 10_000]).unwrap();
        disk.write(8000, &[3; 100]).unwrap();
        disk.set_len(5000).unwrap();
        disk.write(20_000, &[4; 10]).unwrap(); // extends past the end
        assert_eq!(disk.len().unwrap(), 20_010);
        let mut buf = [0; 4];
        disk.read(0, &mut buf).unwrap();
        assert_eq!(buf, [2; 4], "reads see unsynced writes");

        disk.crash(TearMode::None);
        assert_eq!(read_all(&disk), durable);
        let stats = disk.stats();
        assert_eq!(stats.crashes, 1);
        assert_eq!(stats.torn_writes, 0);
        assert_eq!(stats.syncs, 1);
        assert_eq!(stats.writes, 4);
        assert_eq!(stats.len_bytes, 3 * 4096);
        assert_eq!(stats.bytes_written, 5000 + 10_000 + 100 + 10);
    }

    #[test]
    fn set_len_beyond_durable_then_crash_returns_to_durable_length() {
        let disk = SimDisk::new();
        disk.write(0, &[7; 1000]).unwrap();
        disk.sync_data().unwrap();
        disk.set_len(1 << 20).unwrap();
        disk.write(500_000, &[1; 10]).unwrap();
        disk.crash(TearMode::None);
        assert_eq!(read_all(&disk), vec![7; 1000]);

        // Shrink then regrow: the truncated durable bytes come back, not zeros.
        disk.set_len(10).unwrap();
        disk.set_len(2000).unwrap();
        disk.crash(TearMode::None);
        assert_eq!(read_all(&disk), vec![7; 1000]);
    }

    #[test]
    fn torn_last_write_keeps_exactly_the_prefix() {
        for keep in [0u16, 1, 250, 500, 999, 1000, 5000] {
            let disk = SimDisk::new();
            disk.write(0, &[0xAA; 3 * 4096]).unwrap();
            disk.sync_data().unwrap();
            disk.write(0, &[1; 100]).unwrap(); // not the last write: lost
            disk.write(1000, &[2; 4000]).unwrap();
            disk.crash(TearMode::TearLastWrite { keep_fraction_per_mille: keep });
            let kept = 4000 * usize::from(keep.min(1000)) / 1000;
            let mut expected = vec![0xAA; 3 * 4096];
            expected[1000..1000 + kept].fill(2);
            assert_eq!(read_all(&disk), expected, "keep = {keep}");
            assert_eq!(disk.stats().torn_writes, 1);
        }
    }

    #[test]
    fn torn_write_is_clipped_to_durable_length_and_needs_an_unsynced_write() {
        let disk = SimDisk::new();
        disk.write(0, &[5; 100]).unwrap();
        disk.sync_data().unwrap();
        // Nothing unsynced: tearing has nothing to tear.
        disk.crash(TearMode::TearLastWrite { keep_fraction_per_mille: 500 });
        assert_eq!(disk.stats().torn_writes, 0);

        disk.write(50, &[6; 100]).unwrap();
        disk.crash(TearMode::TearLastWrite { keep_fraction_per_mille: 1000 });
        let mut expected = vec![5; 100];
        expected[50..].fill(6);
        assert_eq!(read_all(&disk), expected);
    }

    #[test]
    fn kill_io_fails_mutations_and_crash_clears_it() {
        let disk = SimDisk::new();
        disk.write(0, &[1; 10]).unwrap();
        disk.sync_data().unwrap();
        disk.kill_io();
        assert!(disk.is_io_killed());
        assert!(disk.write(0, &[2; 10]).is_err());
        assert!(disk.set_len(0).is_err());
        assert!(disk.sync_data().is_err());
        let mut buf = [0; 10];
        disk.read(0, &mut buf).unwrap();
        assert_eq!(buf, [1; 10], "reads still work, failed writes changed nothing");
        disk.crash(TearMode::None);
        assert!(!disk.is_io_killed());
        disk.write(0, &[3; 10]).unwrap();
        disk.sync_data().unwrap();
    }

    #[test]
    fn kill_io_after_counts_mutating_ops() {
        let disk = SimDisk::new();
        disk.kill_io_after(2);
        disk.set_len(10).unwrap();
        disk.write(0, &[1; 10]).unwrap();
        assert!(disk.sync_data().is_err());
        assert!(disk.is_io_killed());
        disk.crash(TearMode::None);
        assert_eq!(disk.len().unwrap(), 0);
    }

    #[test]
    fn out_of_range_read_is_an_error() {
        let disk = SimDisk::new();
        disk.set_len(10).unwrap();
        let mut buf = [0; 4];
        assert!(disk.read(8, &mut buf).is_err());
        assert!(disk.read(u64::MAX, &mut buf).is_err());
        assert!(disk.read(10, &mut []).is_ok());
        assert!(disk.write(u64::MAX, &[1]).is_err());
    }

    /// Differential test of the undo log against the obvious model (copy the image on sync),
    /// driven by a fixed-seed LCG so it is deterministic.
    #[test]
    fn matches_naive_model() {
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % bound
        };
        let disk = SimDisk::new();
        let mut current: Vec<u8> = Vec::new();
        let mut durable: Vec<u8> = Vec::new();
        let mut last_write: Option<(usize, Vec<u8>)> = None;
        for step in 0..20_000u64 {
            match next(100) {
                0..=59 => {
                    let offset = next(40_000) as usize;
                    let data = vec![(step % 251) as u8 + 1; next(9000) as usize + 1];
                    disk.write(offset as u64, &data).unwrap();
                    if current.len() < offset + data.len() {
                        current.resize(offset + data.len(), 0);
                    }
                    current[offset..offset + data.len()].copy_from_slice(&data);
                    last_write = Some((offset, data));
                }
                60..=74 => {
                    let len = next(50_000) as usize;
                    disk.set_len(len as u64).unwrap();
                    current.resize(len, 0);
                }
                75..=89 => {
                    disk.sync_data().unwrap();
                    durable.clone_from(&current);
                    last_write = None;
                }
                _ => {
                    let keep = next(1200) as u16;
                    let tear = if next(2) == 0 {
                        TearMode::None
                    } else {
                        TearMode::TearLastWrite { keep_fraction_per_mille: keep }
                    };
                    disk.crash(tear);
                    current.clone_from(&durable);
                    if let (TearMode::TearLastWrite { .. }, Some((offset, data))) = (tear, last_write.take()) {
                        let kept = data.len() * usize::from(keep.min(1000)) / 1000;
                        let end = (offset + kept).min(current.len());
                        if offset < end {
                            current[offset..end].copy_from_slice(&data[..end - offset]);
                        }
                    }
                    last_write = None;
                    durable.clone_from(&current);
                }
            }
            assert_eq!(read_all(&disk), current, "step {step}");
        }
    }

    #[test]
    fn handle_is_send_sync_static() {
        fn assert_backend<T: redb::StorageBackend + Clone>() {}
        assert_backend::<SimDisk>();
    }

    fn open(disk: &SimDisk) -> Database {
        Database::builder().create_with_backend(disk.clone()).expect("database opens")
    }

    /// Without a cache redb writes non-durable commits' pages straight to the disk (unsynced),
    /// which gives a crash something to tear; with the default cache they stay in memory.
    fn open_uncached(disk: &SimDisk) -> Database {
        Database::builder().set_cache_size(0).create_with_backend(disk.clone()).expect("database opens")
    }

    fn insert(db: &Database, key: u64, value: u64, durability: Durability) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability).unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            table.insert(key, value).unwrap();
        }
        txn.commit().unwrap();
    }

    fn get(db: &Database, key: u64) -> Option<u64> {
        let txn = db.begin_read().unwrap();
        let table = match txn.open_table(TABLE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return None,
            Err(e) => panic!("{e}"),
        };
        table.get(key).unwrap().map(|v| v.value())
    }

    /// Power loss as the simulator does it: no teardown writes reach the disk.
    fn power_loss(disk: &SimDisk, db: Database, tear: TearMode) {
        disk.kill_io();
        drop(db);
        disk.crash(tear);
    }

    #[test]
    fn redb_durable_commit_survives_crash() {
        let disk = SimDisk::new();
        let db = open(&disk);
        insert(&db, 1, 10, Durability::Immediate);
        power_loss(&disk, db, TearMode::None);

        let db = open(&disk);
        assert_eq!(get(&db, 1), Some(10));
        // Also survives a clean shutdown followed by a crash.
        insert(&db, 2, 20, Durability::Immediate);
        drop(db);
        disk.crash(TearMode::None);
        let db = open(&disk);
        assert_eq!(get(&db, 1), Some(10));
        assert_eq!(get(&db, 2), Some(20));
    }

    #[test]
    fn redb_non_durable_commit_is_lost_on_crash() {
        let disk = SimDisk::new();
        let db = open(&disk);
        insert(&db, 1, 10, Durability::Immediate);
        insert(&db, 2, 20, Durability::None);
        insert(&db, 1, 11, Durability::None);
        assert_eq!(get(&db, 2), Some(20));
        power_loss(&disk, db, TearMode::None);

        let db = open(&disk);
        assert_eq!(get(&db, 1), Some(10));
        assert_eq!(get(&db, 2), None);
        // And the recovered database is writable.
        insert(&db, 3, 30, Durability::Immediate);
        assert_eq!(get(&db, 3), Some(30));
    }

    #[test]
    fn redb_recovers_from_torn_write_after_non_durable_commit() {
        for keep in [0u16, 250, 500, 999] {
            let disk = SimDisk::new();
            let db = open_uncached(&disk);
            for k in 0..50 {
                insert(&db, k, k * 2, Durability::Immediate);
            }
            let durable = disk.stats();
            for k in 0..50 {
                insert(&db, k, 1000 + k, Durability::None);
                insert(&db, 1000 + k, k, Durability::None);
            }
            assert!(disk.stats().writes > durable.writes, "non-durable pages hit the disk");
            assert_eq!(disk.stats().syncs, durable.syncs);
            power_loss(&disk, db, TearMode::TearLastWrite { keep_fraction_per_mille: keep });

            assert_eq!(disk.stats().torn_writes, 1);
            let db = open(&disk);
            for k in 0..50 {
                assert_eq!(get(&db, k), Some(k * 2), "keep = {keep}, key = {k}");
                assert_eq!(get(&db, 1000 + k), None);
            }
        }
    }

    /// Interrupts durable commits part-way through at every possible I/O operation, tearing the
    /// last write: redb must always recover to either the previous or the new commit.
    #[test]
    fn redb_recovers_from_power_loss_mid_commit() {
        let mut torn_writes = 0;
        for keep in [0u16, 250, 500, 999] {
            for ops in 0.. {
                let disk = SimDisk::new();
                let db = open(&disk);
                insert(&db, 1, 10, Durability::Immediate);
                disk.kill_io_after(ops);
                let mut txn = db.begin_write().unwrap();
                {
                    let mut table = txn.open_table(TABLE).unwrap();
                    table.insert(1, 11).unwrap();
                    table.insert(2, 22).unwrap();
                }
                txn.set_durability(Durability::Immediate).unwrap();
                let committed = txn.commit().is_ok();
                let finished = !disk.is_io_killed();
                power_loss(&disk, db, TearMode::TearLastWrite { keep_fraction_per_mille: keep });

                torn_writes += disk.stats().torn_writes;

                let db = open(&disk);
                let state = (get(&db, 1), get(&db, 2));
                if committed {
                    assert_eq!(state, (Some(11), Some(22)), "ops = {ops}, keep = {keep}");
                } else {
                    assert!(
                        state == (Some(10), None) || state == (Some(11), Some(22)),
                        "ops = {ops}, keep = {keep}, state = {state:?}"
                    );
                }
                if finished {
                    break;
                }
            }
        }
        assert!(torn_writes > 0, "some interrupted commit left a write to tear");
    }
}
