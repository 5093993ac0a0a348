//! `roomraft-bench`: drives concurrent HTTPS clients against a running Roomraft cluster (or, for
//! comparison, an etcd cluster's JSON gateway) and reports throughput, latency and CPU per
//! request. A binary of its own, so the production `roomraft` carries no load generator.
//!
//! ```sh
//! cargo build --release -p roomraft-bench && target/release/roomraft-bench --help
//! ```

mod bench;

use clap::Parser;

/// Drive concurrent HTTPS clients against a running cluster and report throughput and latency.
#[derive(Parser)]
#[command(name = "roomraft-bench", version)]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Runtime::new()?.block_on(bench::run(cli.args))
}
