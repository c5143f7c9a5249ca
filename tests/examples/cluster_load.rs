//! The multi-replica load test of `make bench` (issue 13): three API
//! replicas behind nginx, two workers, RabbitMQ and the S3 server; prints
//! the Markdown tables recorded in docs/benchmarks.md. Options (all
//! optional): `--requests N --assets N --connections N --replicas N
//! --workers N --miss-ratio F --ingest-ratio F --zipf F --photo WxH
//! --sim-config PATH`). It writes the costs it measured as a simulator
//! config (default `target/cluster-load-sim.json`): `python3
//! benches/sim/sim.py --config PATH` predicts the same run.

#[path = "../common/mod.rs"]
mod common;

use common::cluster::{run_load, LoadConfig};

fn parse(cfg: &mut LoadConfig, sim: &mut String, args: &[String]) -> Result<(), String> {
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--requests" => cfg.requests = value.parse().map_err(bad)?,
            "--assets" => cfg.assets = value.parse().map_err(bad)?,
            "--connections" => cfg.connections = value.parse().map_err(bad)?,
            "--replicas" => cfg.replicas = value.parse().map_err(bad)?,
            "--workers" => cfg.workers = value.parse().map_err(bad)?,
            "--miss-ratio" => {
                cfg.miss_ratio = value.parse().map_err(|_| format!("bad value for {flag}"))?
            }
            "--ingest-ratio" => {
                cfg.ingest_ratio = value.parse().map_err(|_| format!("bad value for {flag}"))?
            }
            "--zipf" => cfg.zipf_s = value.parse().map_err(|_| format!("bad value for {flag}"))?,
            "--sim-config" => *sim = value.clone(),
            "--photo" => {
                let (w, h) = value
                    .split_once('x')
                    .ok_or(format!("--photo WxH, not {value}"))?;
                cfg.photo = (w.parse().map_err(bad)?, h.parse().map_err(bad)?);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut cfg = LoadConfig::bench();
    let mut sim = "target/cluster-load-sim.json".to_string();
    let args: Vec<String> = std::env::args().skip(1).collect();
    parse(&mut cfg, &mut sim, &args).map_err(anyhow::Error::msg)?;
    let report = run_load(&cfg).await;
    println!("{}", report.markdown());
    let config = serde_json::to_string_pretty(&report.measured.sim_config(&cfg))?;
    std::fs::write(&sim, config)?;
    println!("\nSimulator config with these costs: python3 benches/sim/sim.py --config {sim}");
    Ok(())
}
