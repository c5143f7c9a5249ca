//! `serve` end to end over a real listener: single-machine defaults, HTTP
//! from reqwest, the ingest CLI's upload, graceful shutdown.

use std::time::Duration;
use thumbfarm_api::cli::ingest::{collect_files, upload_file};
use thumbfarm_api::{ServeArgs, Server};

const KEY: &str = "serve-test-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs::try_from_args([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--api-keys",
        KEY,
        "--token-mode",
        "public",
        "--queue-stats-interval",
        "0.2",
        "--shutdown-grace",
        "2",
    ])
    .unwrap();
    let server = Server::bind(&args).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Upload a folder the way `thumbfarm-api ingest` does.
    let files = dir.path().join("photos");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a.jpg"), b"\xFF\xD8\xFF\xE0 first").unwrap();
    std::fs::write(files.join("b.jpg"), b"\xFF\xD8\xFF\xE0 second").unwrap();
    let (paths, failed) = collect_files(std::slice::from_ref(&files));
    assert!(failed.is_empty());
    assert_eq!(paths.len(), 2);
    for path in &paths {
        let (new, r) = upload_file(&client, &base, KEY, path).await.unwrap();
        assert!(new, "{r:?}");
    }
    let (new, _) = upload_file(&client, &base, KEY, &paths[0]).await.unwrap();
    assert!(!new, "second upload is known");
    let err = upload_file(&client, &base, "wrong-key-0123456789", &paths[0])
        .await
        .unwrap_err();
    assert!(err.contains("401"), "{err}");

    // No cookies anywhere.
    let thumb = client
        .get(format!("{base}/api/v1/t/{}/public/fit_720", "0".repeat(40)))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 404);
    assert!(thumb.headers().get("set-cookie").is_none());

    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("stops within the grace")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn bad_options_fail_before_binding() {
    let args =
        ServeArgs::try_from_args(["--listen", "127.0.0.1:0", "--prefix-depth", "9"]).unwrap();
    let err = Server::bind(&args).await.unwrap_err();
    assert!(err.to_string().contains("--prefix-depth"), "{err}");
    let args =
        ServeArgs::try_from_args(["--listen", "127.0.0.1:0", "--token-mode", "signed"]).unwrap();
    let err = Server::bind(&args).await.unwrap_err();
    assert!(err.to_string().contains("--signing-keys"), "{err}");
}
