//! Printing the results of one-shot commands (`thumbfarm-worker render`,
//! `thumbfarm-api url`, …) so that a closed pipe (`… | head -1`) ends the
//! command quietly instead of panicking like `println!` does.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout and flushes it. When the reader has gone away
/// (a broken pipe) the process exits at once with status 0, as a Unix tool
/// stopped by `SIGPIPE` would, without a message; other write errors are
/// returned.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

/// [`print`] of one line (a newline is added).
pub fn print_line(line: &str) -> std::io::Result<()> {
    print(&format!("{line}\n"))
}
