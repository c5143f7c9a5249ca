//! The short version of the multi-replica load test (`make bench` runs the
//! full one, `cargo run --release -p thumbfarm-e2e --example
//! cluster_load`): three API replicas behind nginx, two workers, the real
//! broker and S3 server, a mix of hits, misses and ingests over
//! Zipf-popular assets. Asserts what must hold at any speed: no 5xx, every
//! request answered, no thumbnail rendered twice, one job per miss.

mod common;

use common::cluster::{run_load, LoadConfig};
use common::BROKER_LOCK;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_two_workers_mixed_load() {
    let _broker = BROKER_LOCK.lock().await;
    let cfg = LoadConfig {
        assets: 150,
        requests: 3000,
        connections: 32,
        photo: (640, 480),
        ingest_ratio: 0.01,
        ..LoadConfig::bench()
    };
    let report = run_load(&cfg).await;
    println!("{}", report.markdown());
    println!("simulator config: {}", report.measured.sim_config(&cfg));
    assert_eq!(report.server_errors, 0, "{}", report.markdown());
    let answered: usize = report.statuses.iter().map(|(_, n)| n).sum();
    assert_eq!(answered, cfg.requests);
    assert!(
        report.statuses.iter().all(|(s, _)| *s == 200 || *s == 201),
        "{:?}",
        report.statuses
    );
    assert_eq!(report.duplicate_renders, 0, "{}", report.markdown());
    assert!(
        report.misses.count > 0 && report.hits.count > 0 && report.ingests.count > 0,
        "a mix: {}",
        report.markdown()
    );
    assert!(
        report.ondemand_published <= report.misses.count as f64,
        "at most one job per miss: {}",
        report.markdown()
    );
}
