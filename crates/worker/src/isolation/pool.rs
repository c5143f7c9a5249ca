//! The worker's side: a pool of decoder children, their limits, and what a
//! child's death means for the job.

use super::child::CHILD_ARG;
use super::protocol::{Output, Reply, Request, WireOptions};
use crate::render::{self, RenderError, RenderOptions, RenderResult, RenderedOutput};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thumbfarm_shared::sizes::Size;

/// The limits a decoder child runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsolationLimits {
    /// Address-space limit of a child, in bytes.
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
}

/// Renders still images in reusable child processes (see the module docs).
pub struct IsolatedRenderer {
    program: PathBuf,
    limits: IsolationLimits,
    idle: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for IsolatedRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatedRenderer")
            .field("program", &self.program)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Bytes of a child's stderr kept to explain its death.
const STDERR_TAIL: usize = 4096;

impl IsolatedRenderer {
    /// Children run `program` (a worker binary: `thumbfarm-worker` or
    /// `thumbfarm`) under `limits`.
    pub fn new(program: PathBuf, limits: IsolationLimits) -> Self {
        IsolatedRenderer {
            program,
            limits,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Children of the running executable.
    pub fn of_current_exe(limits: IsolationLimits) -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?, limits))
    }

    /// The limits children run under.
    pub fn limits(&self) -> IsolationLimits {
        self.limits
    }

    /// [`render::render_file`] in a child. Blocking: call it from
    /// `spawn_blocking`.
    pub fn render_file(
        &self,
        path: &Path,
        sizes: &[Size],
        opts: &RenderOptions,
    ) -> Result<RenderResult, RenderError> {
        // The media type comes from the first bytes, read here (no decoder).
        let mut head = vec![0u8; 64 * 1024];
        let n = std::fs::File::open(path)?.read(&mut head)?;
        head.truncate(n);
        let media_type = render::detect(&head)?.media_type();

        // A private directory (0700) for the child's outputs.
        let out = tempfile::Builder::new()
            .prefix("thumbfarm-outputs-")
            .tempdir()?;
        let out_dir = out.path().to_path_buf();
        let result = self.exchange(path, sizes, opts, &out_dir);
        let result = result.and_then(|rendered| {
            let outputs = rendered
                .outputs
                .into_iter()
                .map(|o| read_output(&out_dir, o))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RenderResult {
                width: rendered.width,
                height: rendered.height,
                media_type,
                decode_millis: rendered.decode_millis,
                hdr: rendered.hdr,
                outputs,
            })
        });
        drop(out);
        result
    }

    /// Sends one request to a child and reads its reply; a child that dies
    /// or overruns the time limit is turned into [`RenderError::Crashed`].
    fn exchange(
        &self,
        path: &Path,
        sizes: &[Size],
        opts: &RenderOptions,
        out_dir: &Path,
    ) -> Result<super::protocol::Rendered, RenderError> {
        let request = Request {
            source: path.to_path_buf(),
            sizes: sizes.to_vec(),
            options: WireOptions::from(opts),
            out_dir: out_dir.to_path_buf(),
        };
        let line = serde_json::to_string(&request).map_err(std::io::Error::other)?;
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
        let mut reply = String::new();
        let read = match sent {
            Ok(()) => worker.stdout.read_line(&mut reply),
            Err(e) => Err(e),
        };
        done.store(true, Ordering::Release);
        let _ = watchdog.join();

        match read {
            Ok(n) if n > 0 => match serde_json::from_str::<Reply>(&reply) {
                Ok(Reply::Rendered(rendered)) => {
                    self.give_back(worker);
                    Ok(rendered)
                }
                Ok(Reply::Failed(failure)) => {
                    self.give_back(worker);
                    Err(failure.into())
                }
                Err(e) => {
                    discard(worker);
                    Err(RenderError::Crashed(format!(
                        "decoder crashed: unreadable answer ({e})"
                    )))
                }
            },
            // End of output: the child is gone.
            _ => {
                let mut worker = worker;
                let status = worker.child.wait()?;
                let stderr = worker.stderr.lock().map(|s| s.clone()).unwrap_or_default();
                let reason = death_reason(
                    status,
                    timed_out.load(Ordering::Acquire),
                    &stderr,
                    self.limits,
                );
                tracing::warn!(%reason, pid, "decoder child died; the job fails, the next gets a new child");
                Err(RenderError::Crashed(reason))
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches no memory of the
        // parent; it runs in the forked child before exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: memory as libc::rlim_t,
                    rlim_max: memory as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
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
        {
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
            });
        }
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
        })
    }
}

impl Drop for IsolatedRenderer {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for w in idle {
            discard(w);
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

fn read_output(out_dir: &Path, o: Output) -> Result<RenderedOutput, RenderError> {
    // Only files inside the job's own directory.
    let file = out_dir.join(o.size.name());
    if o.file != file {
        return Err(RenderError::Crashed(
            "decoder crashed: answered with a file outside its directory".into(),
        ));
    }
    Ok(RenderedOutput {
        size: o.size,
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
    if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
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
}
