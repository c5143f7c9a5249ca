//! The worker's side: a pool of decoder children, their limits, and what a
//! child's death means for the job.

use super::child::CHILD_ARG;
use super::protocol::{Output, RenderRequest, Reply, Request, TranscodeRequest};
use super::work::{RenderedOriginal, Transcoded};
use crate::render::{RenderError, RenderOptions, RenderResult, RenderedOutput};
use crate::video::{VideoError, VideoOptions};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thumbfarm_shared::renditions::Rendition;

/// [`IsolationLimits::memory_bytes`] of children without an address-space
/// limit (transcodes on a hardware encoder, whose driver reserves large
/// address ranges).
pub const NO_MEMORY_LIMIT: u64 = u64::MAX;

/// The limits a decoder child runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsolationLimits {
    /// Address-space limit of a child, in bytes ([`NO_MEMORY_LIMIT`]: none).
    pub memory_bytes: u64,
    /// Wall-clock limit of one job.
    pub timeout: Duration,
}

impl IsolationLimits {
    /// The default memory limit for `max_pixels`: room for the decoded
    /// original at 16 bytes a pixel (RGBA16 plus a resize buffer) on top of
    /// 1 GiB for the program's own mappings, threads and encoders.
    pub fn memory_for(max_pixels: u64) -> u64 {
        (1u64 << 30).saturating_add(max_pixels.saturating_mul(16))
    }
}

/// One running child.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The end of what the child wrote to stderr (why it aborted).
    stderr: Arc<Mutex<String>>,
    /// The thread that reads it; it ends when the child has exited.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// Bytes of a child's stderr kept to explain its death.
const STDERR_TAIL: usize = 4096;

/// Why an exchange with a child gave no answer.
enum Lost {
    /// The worker's side failed (spawning, pipes).
    Io(std::io::Error),
    /// The child died or overran a limit: the reason, for the failure record.
    Died(String),
}

impl From<std::io::Error> for Lost {
    fn from(e: std::io::Error) -> Self {
        Lost::Io(e)
    }
}

impl From<Lost> for RenderError {
    fn from(l: Lost) -> Self {
        match l {
            Lost::Io(e) => RenderError::Io(e),
            Lost::Died(reason) => RenderError::Crashed(reason),
        }
    }
}

impl From<Lost> for VideoError {
    fn from(l: Lost) -> Self {
        match l {
            Lost::Io(e) => VideoError::Io(e),
            Lost::Died(reason) => VideoError::Crashed(reason),
        }
    }
}

/// Reusable children of one program under one set of limits.
struct ChildPool {
    program: PathBuf,
    limits: IsolationLimits,
    idle: Mutex<Vec<Worker>>,
}

impl ChildPool {
    fn new(program: PathBuf, limits: IsolationLimits) -> Self {
        ChildPool {
            program,
            limits,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one request to a child and reads its replies until the final
    /// one (progress goes to `on_progress`); a child that dies or overruns
    /// the time limit is [`Lost::Died`].
    fn exchange(&self, request: &Request, on_progress: &mut dyn FnMut(u8)) -> Result<Reply, Lost> {
        let line = serde_json::to_string(request).map_err(std::io::Error::other)?;
        let mut worker = self.take()?;
        let sent = writeln!(worker.stdin, "{line}").and_then(|()| worker.stdin.flush());

        // A watchdog kills the child at the deadline; the read below then
        // ends.
        let done = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        let pid = worker.child.id();
        let deadline = Instant::now() + self.limits.timeout;
        let watchdog = {
            let (done, timed_out) = (Arc::clone(&done), Arc::clone(&timed_out));
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    if Instant::now() >= deadline {
                        timed_out.store(true, Ordering::Release);
                        kill(pid, libc::SIGKILL);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let outcome = sent.and_then(|()| read_final(&mut worker.stdout, on_progress));
        done.store(true, Ordering::Release);
        let _ = watchdog.join();

        match outcome {
            Ok(Some(Ok(reply))) => {
                self.give_back(worker);
                Ok(reply)
            }
            Ok(Some(Err(e))) => {
                discard(worker);
                Err(Lost::Died(format!(
                    "decoder crashed: unreadable answer ({e})"
                )))
            }
            // End of output, or a broken pipe: the child is gone.
            Ok(None) | Err(_) => {
                let mut worker = worker;
                // A child that only closed its output is ended here.
                if matches!(worker.child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                    if matches!(worker.child.try_wait(), Ok(None)) {
                        let _ = worker.child.kill();
                    }
                }
                let status = worker.child.wait()?;
                // Its last words (an allocation failure) are read to the end.
                if let Some(reader) = worker.stderr_reader.take() {
                    let _ = reader.join();
                }
                let stderr = worker.stderr.lock().map(|s| s.clone()).unwrap_or_default();
                let reason = death_reason(
                    status,
                    timed_out.load(Ordering::Acquire),
                    &stderr,
                    self.limits,
                );
                tracing::warn!(%reason, pid, "decoder child died; the job fails, the next gets a new child");
                Err(Lost::Died(reason))
            }
        }
    }

    fn take(&self) -> std::io::Result<Worker> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(mut w) = idle {
            if matches!(w.child.try_wait(), Ok(None)) {
                return Ok(w);
            }
            discard(w);
        }
        self.spawn()
    }

    fn give_back(&self, worker: Worker) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(worker);
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        use std::os::unix::process::CommandExt;
        let memory = self.limits.memory_bytes;
        let mut cmd = Command::new(&self.program);
        cmd.arg(CHILD_ARG)
            // No credentials or anything else of the worker's environment.
            .env_clear()
            // Few malloc arenas: the address-space limit then measures what
            // the decode needs, not per-thread reservations.
            .env("MALLOC_ARENA_MAX", "2")
            // Its own process group: a Ctrl-C meant for the worker does not
            // kill the jobs it is finishing.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the
        // parent; it runs in the forked child before exec.
        unsafe {
            cmd.pre_exec(move || {
                if memory != NO_MEMORY_LIMIT {
                    let limit = libc::rlimit {
                        rlim_cur: memory as libc::rlim_t,
                        rlim_max: memory as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // No core files of hostile input.
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(std::io::Error::other("decoder child without pipes"));
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let tail = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > STDERR_TAIL {
                        let cut = t.len() - STDERR_TAIL;
                        let cut = (cut..t.len()).find(|i| t.is_char_boundary(*i)).unwrap_or(0);
                        t.drain(..cut);
                    }
                }
            })
        };
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            stderr_reader: Some(stderr_reader),
        })
    }
}

impl Drop for ChildPool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for w in idle {
            discard(w);
        }
    }
}

/// Reads replies until the final one: `None` at end of output (the child is
/// gone), `Some(Err)` for a line that is not a reply.
fn read_final(
    stdout: &mut BufReader<ChildStdout>,
    on_progress: &mut dyn FnMut(u8),
) -> std::io::Result<Option<Result<Reply, serde_json::Error>>> {
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Progress(p)) => on_progress(p.min(100)),
            other => return Ok(Some(other)),
        }
    }
}

/// The decoder work of jobs, done in reusable child processes (see the
/// module docs): still images and posters in one pool, transcodes in
/// another (their limits differ).
pub struct DecoderChildren {
    images: ChildPool,
    videos: ChildPool,
}

impl std::fmt::Debug for DecoderChildren {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderChildren")
            .field("program", &self.images.program)
            .field("images", &self.images.limits)
            .field("videos", &self.videos.limits)
            .finish()
    }
}

impl DecoderChildren {
    /// Children run `program` (a worker binary: `thumbfarm-worker` or
    /// `thumbfarm`): renders under `images`, transcodes under `videos`.
    pub fn new(program: PathBuf, images: IsolationLimits, videos: IsolationLimits) -> Self {
        DecoderChildren {
            images: ChildPool::new(program.clone(), images),
            videos: ChildPool::new(program, videos),
        }
    }

    /// Children of the running executable, which must call
    /// [`run_child_if_asked`](super::run_child_if_asked) first thing in
    /// `main` (`thumbfarm-worker` and `thumbfarm` do; a test binary does not).
    pub fn of_current_exe(
        images: IsolationLimits,
        videos: IsolationLimits,
    ) -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?, images, videos))
    }

    /// Starts `renders` render children ahead of the first jobs, so that no
    /// job waits for a process start. Blocking.
    /// Returns when they have answered, i.e. are loaded and ready.
    pub fn warm_up(&self, renders: usize) -> std::io::Result<()> {
        for _ in 0..renders {
            // The newest idle child is the next one taken: this one.
            let child = self.images.spawn()?;
            self.images.give_back(child);
            match self.images.exchange(&Request::Ping, &mut |_| {}) {
                Ok(Reply::Ready) => {}
                Ok(_) => return Err(std::io::Error::other("decoder child answered out of turn")),
                Err(Lost::Io(e)) => return Err(e),
                Err(Lost::Died(reason)) => return Err(std::io::Error::other(reason)),
            }
        }
        Ok(())
    }

    /// The limits of render children.
    pub fn image_limits(&self) -> IsolationLimits {
        self.images.limits
    }

    /// The limits of transcode children.
    pub fn video_limits(&self) -> IsolationLimits {
        self.videos.limits
    }

    /// [`work::render_original`] in a child. Blocking: call it from
    /// `spawn_blocking`.
    pub fn render_original(
        &self,
        path: &Path,
        sizes: &[Rendition],
        media_hint: Option<&str>,
        render_opts: &RenderOptions,
        video_opts: &VideoOptions,
    ) -> Result<RenderedOriginal, RenderError> {
        // A private directory (0700) for the child's outputs.
        let out = tempfile::Builder::new()
            .prefix("thumbfarm-outputs-")
            .tempdir()?;
        let out_dir = out.path().to_path_buf();
        let request = Request::Render(RenderRequest {
            source: path.to_path_buf(),
            sizes: sizes.to_vec(),
            media_hint: media_hint.map(str::to_string),
            options: render_opts.clone(),
            video: video_opts.clone(),
            out_dir: out_dir.clone(),
        });
        let rendered = match self.images.exchange(&request, &mut |_| {})? {
            Reply::Rendered(rendered) => rendered,
            Reply::RenderFailed(failure) => return Err(failure.into()),
            _ => {
                return Err(RenderError::Crashed(
                    "decoder crashed: answered out of turn".into(),
                ))
            }
        };
        let outputs = rendered
            .outputs
            .into_iter()
            .map(|o| read_output(&out_dir, o))
            .collect::<Result<Vec<_>, _>>()?;
        drop(out);
        Ok(RenderedOriginal {
            result: RenderResult {
                width: rendered.width,
                height: rendered.height,
                media_type: known_media_type(&rendered.media_type),
                decode_millis: rendered.decode_millis,
                hdr: rendered.hdr,
                outputs,
                thumbhash: rendered.thumbhash,
            },
            extras: rendered.extras,
        })
    }

    /// [`work::transcode_original`] in a child: `output` and `work_dir`
    /// belong to the job. Blocking: call it from `spawn_blocking`.
    pub fn transcode_original(
        &self,
        original: &Path,
        work_dir: &Path,
        output: &Path,
        opts: &VideoOptions,
        deadline: Instant,
        progress: &mut dyn FnMut(u8),
    ) -> Result<Transcoded, VideoError> {
        let request = Request::Transcode(TranscodeRequest {
            source: original.to_path_buf(),
            work_dir: work_dir.to_path_buf(),
            output: output.to_path_buf(),
            video: opts.clone(),
            millis_left: deadline
                .saturating_duration_since(Instant::now())
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        });
        match self.videos.exchange(&request, progress)? {
            Reply::Transcoded(done) => Ok(done),
            Reply::TranscodeFailed(failure) => Err(failure.into()),
            _ => Err(VideoError::Crashed(
                "decoder crashed: answered out of turn".into(),
            )),
        }
    }
}

/// Ends a child that cannot be trusted with another job.
fn discard(mut worker: Worker) {
    let _ = worker.child.kill();
    let _ = worker.child.wait();
}

fn kill(pid: u32, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a pid this process spawned and has not reaped.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The media type a child named, as one of a bounded set of `'static`
/// strings (a metric label and the manifest's field): a child that names
/// something odd, or the 65th distinct type, gets `application/octet-stream`.
fn known_media_type(name: &str) -> &'static str {
    const FALLBACK: &str = "application/octet-stream";
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let plausible = name.len() <= 64
        && name.split_once('/').is_some()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/.+-".contains(&b));
    if !plausible {
        return FALLBACK;
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let seen = seen.get_or_insert_with(HashSet::new);
    if let Some(known) = seen.get(name) {
        return known;
    }
    if seen.len() >= 64 {
        return FALLBACK;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    seen.insert(leaked);
    leaked
}

fn read_output(out_dir: &Path, o: Output) -> Result<RenderedOutput, RenderError> {
    // Only files inside the job's own directory.
    let file = out_dir.join(Output::file_name(o.size, o.format));
    if o.file != file {
        return Err(RenderError::Crashed(
            "decoder crashed: answered with a file outside its directory".into(),
        ));
    }
    Ok(RenderedOutput {
        size: o.size,
        format: o.format,
        width: o.width,
        height: o.height,
        bytes: std::fs::read(&file)?,
        millis: o.millis,
    })
}

/// Why a child died, in the words of a failure record.
fn death_reason(
    status: ExitStatus,
    timed_out: bool,
    stderr: &str,
    limits: IsolationLimits,
) -> String {
    use std::os::unix::process::ExitStatusExt;
    if timed_out {
        return format!("took longer than {} s", limits.timeout.as_secs());
    }
    // Rust aborts when an allocation fails; C decoders report it or crash.
    // (Without a limit, an allocation failure is the machine's, not the job's.)
    let out_of_memory = stderr.contains("memory allocation of") || stderr.contains("out of memory");
    if out_of_memory && limits.memory_bytes != NO_MEMORY_LIMIT {
        return format!(
            "over the job memory limit ({})",
            human_bytes(limits.memory_bytes)
        );
    }
    match status.signal() {
        Some(sig) => format!("decoder crashed: {}", signal_name(sig)),
        None => format!(
            "decoder crashed: exit status {}",
            status.code().unwrap_or(-1)
        ),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}

fn human_bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let f = n as f64;
    if f >= GIB {
        format!("{:.1} GiB", f / GIB)
    } else {
        format!("{:.0} MiB", f / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn deaths_are_explained() {
        let limits = IsolationLimits {
            memory_bytes: 3 << 29,
            timeout: Duration::from_secs(120),
        };
        let segv = ExitStatus::from_raw(libc::SIGSEGV);
        assert_eq!(
            death_reason(segv, false, "", limits),
            "decoder crashed: SIGSEGV"
        );
        let abrt = ExitStatus::from_raw(libc::SIGABRT);
        assert_eq!(
            death_reason(
                abrt,
                false,
                "memory allocation of 123 bytes failed\n",
                limits
            ),
            "over the job memory limit (1.5 GiB)"
        );
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(
            death_reason(killed, true, "", limits),
            "took longer than 120 s"
        );
        assert_eq!(IsolationLimits::memory_for(0), 1 << 30);
    }

    #[test]
    fn media_types_from_a_child_stay_a_small_set() {
        assert_eq!(known_media_type("image/jpeg"), "image/jpeg");
        assert_eq!(known_media_type("video/quicktime"), "video/quicktime");
        assert_eq!(
            known_media_type("IMAGE/<script>"),
            "application/octet-stream"
        );
        assert_eq!(
            known_media_type(&"a/".repeat(40)),
            "application/octet-stream"
        );
        for i in 0..100 {
            known_media_type(&format!("image/x-made-up-{i}"));
        }
        assert_eq!(
            known_media_type("image/x-made-up-99"),
            "application/octet-stream"
        );
        assert_eq!(known_media_type("image/jpeg"), "image/jpeg");
    }
}
