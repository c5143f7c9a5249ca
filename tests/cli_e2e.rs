//! The one-shot commands end quietly when their reader goes away
//! (`thumbfarm-worker render … | head -1`): status 0, no panic message.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// Runs `cmd` with its stdout a pipe whose reading end is already closed,
/// so that the first line it prints meets a broken pipe.
fn run_into_closed_pipe(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn render_exits_quietly_on_a_closed_pipe() {
    let photo = corpus_file("photos/jolla.jpg");
    let out = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(binary("thumbfarm-worker", "thumbfarm-worker"));
    cmd.args(["render", "--sizes", "tile_50,tile_224", "--source"])
        .arg(&photo)
        .arg("--out")
        .arg(out.path());
    let (status, stderr) = run_into_closed_pipe(cmd);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status:?}: {stderr}");
}

#[test]
fn url_exits_quietly_on_a_closed_pipe() {
    let mut cmd = Command::new(binary("thumbfarm-api", "thumbfarm-api"));
    cmd.args(["url", &"a".repeat(40), "fit_720"]);
    let (status, stderr) = run_into_closed_pipe(cmd);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status:?}: {stderr}");
    // The same command into a live pipe prints the URL.
    let out = Command::new(binary("thumbfarm-api", "thumbfarm-api"))
        .args(["url", &"a".repeat(40), "fit_720"])
        .output()
        .expect("url");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("/api/v1/t/{}/public/fit_720", "a".repeat(40))
    );
}
