//! The decoder child: reads requests from stdin, renders, answers on
//! stdout, until stdin closes.

use super::protocol::{Failure, Output, Rendered, Reply, Request};
use crate::render::{self, RenderError, RenderOptions};
use std::io::{BufRead, Write};

/// The first argument that makes a worker binary a decoder child.
pub const CHILD_ARG: &str = "__decoder-child";

/// Runs the decoder child loop and exits when the process was started as
/// one (first argument [`CHILD_ARG`]); returns otherwise. Call it first in
/// `main`.
pub fn run_child_if_asked() {
    if std::env::args().nth(1).as_deref() != Some(CHILD_ARG) {
        return;
    }
    let code = match serve(std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("decoder child: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Answers requests until `input` ends.
fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(request) => handle(request),
            Err(e) => Reply::Failed(Failure::Io(format!("malformed request: {e}"))),
        };
        let text = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
        writeln!(output, "{text}")?;
        output.flush()?;
    }
    Ok(())
}

fn handle(request: Request) -> Reply {
    match render_into(&request) {
        Ok(rendered) => Reply::Rendered(rendered),
        Err(e) => Reply::Failed(Failure::from(&e)),
    }
}

fn render_into(request: &Request) -> Result<Rendered, RenderError> {
    let options = RenderOptions::from(request.options.clone());
    let result = render::render_file(&request.source, &request.sizes, &options)?;
    let mut outputs = Vec::with_capacity(result.outputs.len());
    for out in result.outputs {
        let file = request.out_dir.join(out.size.name());
        std::fs::write(&file, &out.bytes)?;
        outputs.push(Output {
            size: out.size,
            width: out.width,
            height: out.height,
            millis: out.millis,
            file,
        });
    }
    Ok(Rendered {
        width: result.width,
        height: result.height,
        decode_millis: result.decode_millis,
        hdr: result.hdr,
        outputs,
    })
}
