use roomraft_cluster::openraft::testing::{StoreBuilder, Suite};
use roomraft_cluster::openraft::StorageError;
use roomraft_cluster::{LogStore, StateMachineStore, Store, TypeConfig};

use crate::harness::Claims;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore<Claims>, tempfile::TempDir>
    for SledBuilder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore<Claims>), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sm = StateMachineStore::open(store.clone()).unwrap();
        Ok((dir, LogStore::new(store), sm))
    }
}

#[test]
fn sled_store_passes_openraft_suite() {
    Suite::test_all(SledBuilder).unwrap();
}
