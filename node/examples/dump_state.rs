//! Writes the state a stopped node's data folder holds, as this build reads it: the applied log
//! index and every record sorted by key, bincode-encoded. `node/tests/fixtures/make-release.sh`
//! keeps it beside a data folder so later builds can prove they read that folder record for
//! record.
//!
//! ```sh
//! cargo run -p roomraft-node --example dump_state -- <data-folder> <out.bin>
//! ```

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(out)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: dump_state <data-folder> <out.bin>");
    };
    let (index, records) =
        roomraft_cluster::stored_records::<roomraft_node::domain::Bookings>(dir.as_ref())?;
    std::fs::write(&out, bincode::serialize(&(index, &records))?)?;
    println!(
        "{} records at log index {index} written to {out}",
        records.len()
    );
    Ok(())
}
