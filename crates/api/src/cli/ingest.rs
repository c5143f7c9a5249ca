//! `thumbfarm-api ingest PATH...`: uploads files (folders recursively)
//! through a running API's ingest route, streaming each file.

use crate::config::IngestArgs;
use crate::routes::ingest::IngestResponse;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use walkdir::WalkDir;

/// The outcome of an ingest run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files that were new, with their hash.
    pub new: Vec<(PathBuf, String)>,
    /// Files already known, with their hash.
    pub known: Vec<(PathBuf, String)>,
    /// Files that failed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl Summary {
    /// Whether everything was uploaded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} new, {} already known, {} failed",
            self.new.len(),
            self.known.len(),
            self.failed.len()
        )?;
        for (path, reason) in &self.failed {
            writeln!(f, "  failed: {}: {reason}", path.display())?;
        }
        Ok(())
    }
}

fn is_hidden(entry: &walkdir::DirEntry) -> bool {
    entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.')
}

/// The files named by `paths`: files as given, folders walked recursively
/// (hidden entries skipped, symlinks not followed). Paths that cannot be
/// read come back as failures.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => files.push(path.clone()),
            Ok(m) if m.is_dir() => {
                let walker = WalkDir::new(path).sort_by_file_name().into_iter();
                for entry in walker.filter_entry(|e| !is_hidden(e)) {
                    match entry {
                        Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
                        Ok(_) => {}
                        Err(e) => failed.push((
                            e.path().map_or_else(|| path.clone(), Path::to_path_buf),
                            e.to_string(),
                        )),
                    }
                }
            }
            Ok(_) => failed.push((path.clone(), "not a file or folder".into())),
            Err(e) => failed.push((path.clone(), e.to_string())),
        }
    }
    (files, failed)
}

/// Uploads one file; the body is streamed from disk.
pub async fn upload_file(
    client: &reqwest::Client,
    api_url: &str,
    api_key: &str,
    path: &Path,
) -> Result<(bool, IngestResponse), String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let len = file.metadata().await.map_err(|e| e.to_string())?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let url = format!("{}/api/v1/ingest", api_url.trim_end_matches('/'));
    let response = client
        .post(url)
        .bearer_auth(api_key)
        .query(&[("name", name.as_str())])
        .header(reqwest::header::CONTENT_LENGTH, len)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        let parsed: IngestResponse = response
            .json()
            .await
            .map_err(|e| format!("unexpected answer: {e}"))?;
        Ok((status == reqwest::StatusCode::CREATED, parsed))
    } else {
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(format!("HTTP {status}: {message}"))
    }
}

/// Uploads everything `args` names and returns what happened.
pub async fn run(args: &IngestArgs) -> Summary {
    let (files, failed) = collect_files(&args.paths);
    let mut summary = Summary {
        failed,
        ..Summary::default()
    };
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            summary
                .failed
                .extend(files.into_iter().map(|f| (f, format!("HTTP client: {e}"))));
            return summary;
        }
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut uploads = futures::stream::iter(files.into_iter().map(|path| {
        let client = &client;
        async move {
            let result = upload_file(client, &args.api_url, &args.api_key, &path).await;
            (path, result)
        }
    }))
    .buffer_unordered(args.jobs.max(1));
    while let Some((path, result)) = uploads.next().await {
        bar.set_message(path.display().to_string());
        bar.inc(1);
        match result {
            Ok((true, r)) => summary.new.push((path, r.hash)),
            Ok((false, r)) => summary.known.push((path, r.hash)),
            Err(reason) => {
                bar.println(format!("failed: {}: {reason}", path.display()));
                summary.failed.push((path, reason));
            }
        }
    }
    bar.finish_and_clear();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_and_hidden_files_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("a/1.jpg"), b"1").unwrap();
        std::fs::write(dir.path().join("a/b/2.jpg"), b"2").unwrap();
        std::fs::write(dir.path().join(".git/x"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden.jpg"), b"x").unwrap();
        let (files, failed) =
            collect_files(&[dir.path().to_path_buf(), dir.path().join("missing")]);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(failed.len(), 1);
    }
}
