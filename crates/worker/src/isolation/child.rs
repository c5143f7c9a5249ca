//! The decoder child: reads requests from stdin, does the decoder work of
//! one job at a time ([`super::work`]), answers on stdout, until stdin
//! closes.

use super::protocol::{
    Output, RenderFailure, RenderRequest, Rendered, Reply, Request, TranscodeFailure,
    TranscodeRequest,
};
use super::work;
use crate::render::RenderError;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

/// The first argument that makes a worker binary a decoder child.
pub const CHILD_ARG: &str = "__decoder-child";

/// Runs the decoder child loop and exits when the process was started as
/// one (first argument [`CHILD_ARG`]); returns otherwise. Call it first in
/// `main`.
pub fn run_child_if_asked() {
    if std::env::args().nth(1).as_deref() != Some(CHILD_ARG) {
        return;
    }
    default_fault_signals();
    exit_with_parent();
    let code = match serve(std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("decoder child: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Lets SIGSEGV and SIGBUS end the child as what they are. (Rust's own
/// handler, there to name stack overflows, returns from a signal that was
/// sent rather than faulted, and the child would carry on.)
fn default_fault_signals() {
    for signal in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: restoring the default disposition, before any thread starts.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}

/// Ends this child when its worker is gone (killed, crashed): nobody waits
/// for the job in hand any more, and its redelivery will do it again.
fn exit_with_parent() {
    // SAFETY: getppid(2) cannot fail and touches no memory.
    let parent = unsafe { libc::getppid() };
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            std::process::exit(1);
        }
    });
}

/// Answers requests until `input` ends.
fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Ping) => Reply::Ready,
            Ok(Request::Render(request)) => render(&request),
            Ok(Request::Transcode(request)) => transcode(&request, &mut output)?,
            Err(e) => Reply::RenderFailed(RenderFailure::Io(format!("malformed request: {e}"))),
        };
        send(&mut output, &reply)?;
    }
    Ok(())
}

fn send(output: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let text = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    writeln!(output, "{text}")?;
    output.flush()
}

fn render(request: &RenderRequest) -> Reply {
    match render_into(request) {
        Ok(rendered) => Reply::Rendered(rendered),
        Err(e) => Reply::RenderFailed(RenderFailure::from(&e)),
    }
}

fn render_into(request: &RenderRequest) -> Result<Rendered, RenderError> {
    let rendered = work::render_original(
        &request.source,
        &request.sizes,
        request.media_hint.as_deref(),
        &request.options,
        &request.video,
    )?;
    let result = rendered.result;
    let mut outputs = Vec::with_capacity(result.outputs.len());
    for out in result.outputs {
        let file = request
            .out_dir
            .join(Output::file_name(out.size, out.format));
        std::fs::write(&file, &out.bytes)?;
        outputs.push(Output {
            size: out.size,
            format: out.format,
            width: out.width,
            height: out.height,
            millis: out.millis,
            file,
        });
    }
    Ok(Rendered {
        width: result.width,
        height: result.height,
        media_type: result.media_type.to_string(),
        decode_millis: result.decode_millis,
        hdr: result.hdr,
        outputs,
        thumbhash: result.thumbhash,
        extras: rendered.extras,
    })
}

/// Runs a transcode, sending its progress as it goes.
fn transcode(request: &TranscodeRequest, output: &mut impl Write) -> std::io::Result<Reply> {
    let deadline = Instant::now() + Duration::from_millis(request.millis_left);
    let mut sent = Ok(());
    let result = work::transcode_original(
        &request.source,
        &request.work_dir,
        &request.output,
        &request.video,
        deadline,
        &mut |percent| {
            if sent.is_ok() {
                sent = send(output, &Reply::Progress(percent));
            }
        },
    );
    // The worker stopped listening: nobody wants the result.
    sent?;
    Ok(match result {
        Ok(done) => Reply::Transcoded(done),
        Err(e) => Reply::TranscodeFailed(TranscodeFailure::from(&e)),
    })
}
