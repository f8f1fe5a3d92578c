//! The paired check of a commit: in debug and simulator builds every row a commit wrote is read
//! back once it is durable and must be what was written (a deleted row must be gone). It finds
//! a write the commit code lost or misdirected (a wrong key, a skipped table) at the commit
//! that made it, not at a restart much later. Release builds of the daemon skip it: it would
//! double the reads of every commit.

use super::error::StoredTable;
use super::Overlay;
use super::StoreError;

#[cfg(any(debug_assertions, madsim))]
use std::collections::BTreeMap;

/// The rows one commit wrote, by table and key (the last write of a key wins, as in redb).
#[cfg(any(debug_assertions, madsim))]
#[derive(Debug, Default)]
pub(super) struct Written(BTreeMap<(StoredTable, Vec<u8>), Option<Vec<u8>>>);

/// Release builds record nothing.
#[cfg(not(any(debug_assertions, madsim)))]
#[derive(Debug, Default)]
pub(super) struct Written;

impl Written {
    /// Notes that `key` of `table` was written with `value` (`None`: deleted).
    #[cfg_attr(not(any(debug_assertions, madsim)), allow(unused_variables))]
    pub(super) fn note(&mut self, table: StoredTable, key: &[u8], value: Option<&[u8]>) {
        #[cfg(any(debug_assertions, madsim))]
        self.0.insert((table, key.to_vec()), value.map(<[u8]>::to_vec));
    }

    /// Reads every noted row and every state write of `state` back from `db`.
    #[cfg(any(debug_assertions, madsim))]
    pub(super) fn verify(self, db: &redb::Database, state: &Overlay) -> Result<(), StoreError> {
        use super::tables::{APPLIED, APPS, CONTEXTS, DAG, PENDING, STATE, USED_INVITATIONS};
        use redb::{ReadableDatabase, TableDefinition};

        fn same(
            txn: &redb::ReadTransaction,
            table: StoredTable,
            definition: TableDefinition<&[u8], &[u8]>,
            rows: &mut dyn Iterator<Item = (&Vec<u8>, &Option<Vec<u8>>)>,
        ) -> Result<(), StoreError> {
            let opened = txn.open_table(definition)?;
            for (key, written) in rows {
                let read = opened.get(key.as_slice())?.map(|value| value.value().to_vec());
                if read != *written {
                    return Err(StoreError::ReadBack { table });
                }
            }
            Ok(())
        }

        let txn = db.begin_read()?;
        same(&txn, StoredTable::State, STATE, &mut state.iter())?;
        for (table, definition) in [
            (StoredTable::Dag, DAG),
            (StoredTable::Pending, PENDING),
            (StoredTable::Contexts, CONTEXTS),
            (StoredTable::Apps, APPS),
            (StoredTable::Applied, APPLIED),
            (StoredTable::UsedInvitations, USED_INVITATIONS),
        ] {
            let mut rows =
                self.0.iter().filter(|((owner, _), _)| *owner == table).map(|((_, key), value)| (key, value));
            same(&txn, table, definition, &mut rows)?;
        }
        Ok(())
    }

    /// Release builds check nothing.
    #[cfg(not(any(debug_assertions, madsim)))]
    pub(super) fn verify(self, _: &redb::Database, _: &Overlay) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(all(test, any(debug_assertions, madsim)))]
mod tests {
    use super::*;
    use crate::store::tables::{APPLIED, APPS, CONTEXTS, DAG, PENDING, STATE, USED_INVITATIONS};

    fn db() -> redb::Database {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory database");
        let txn = db.begin_write().unwrap();
        for table in [PENDING, CONTEXTS, APPS, APPLIED, USED_INVITATIONS] {
            txn.open_table(table).unwrap();
        }
        txn.open_table(DAG).unwrap().insert(b"row".as_slice(), b"written".as_slice()).unwrap();
        txn.open_table(STATE).unwrap().insert(b"key".as_slice(), b"value".as_slice()).unwrap();
        txn.commit().unwrap();
        db
    }

    #[test]
    fn rows_that_read_back_as_written_pass() {
        let db = db();
        let mut written = Written::default();
        written.note(StoredTable::Dag, b"row", Some(b"written"));
        written.note(StoredTable::Pending, b"gone", None);
        let state = Overlay::from([(b"key".to_vec(), Some(b"value".to_vec())), (b"deleted".to_vec(), None)]);
        assert_eq!(written.verify(&db, &state), Ok(()));
    }

    #[test]
    fn a_lost_or_misdirected_write_is_a_read_back_error_naming_its_table() {
        let db = db();
        let mut lost = Written::default();
        lost.note(StoredTable::Dag, b"other row", Some(b"written"));
        assert_eq!(lost.verify(&db, &Overlay::new()), Err(StoreError::ReadBack { table: StoredTable::Dag }));
        let changed = Overlay::from([(b"key".to_vec(), Some(b"another value".to_vec()))]);
        assert_eq!(Written::default().verify(&db, &changed), Err(StoreError::ReadBack { table: StoredTable::State }));
    }
}
