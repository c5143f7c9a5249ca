//! The architecture, checked: the API builds without any decoder, and no
//! module of any crate imports a module that imports it back (the data flows
//! one way). See docs/architecture.md.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Crates that decode or link a C decoder; none may be in the API's graph.
const DECODER_CRATES: &[&str] = &[
    "thumbfarm-worker",
    "ffmpeg-next",
    "ffmpeg-sys-next",
    "libheif-rs",
    "libheif-sys",
    "turbojpeg",
    "turbojpeg-sys",
    "lcms2",
    "lcms2-sys",
    "image",
    "fast_image_resize",
    "kamadak-exif",
];

#[test]
fn the_api_depends_on_no_decoder() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Normal, build and dev dependencies alike: not even the API's tests
    // pull a decoder in.
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "-p",
            "thumbfarm-api",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains("thumbfarm-shared"),
        "unexpected tree:\n{tree}"
    );
    let found: Vec<&&str> = DECODER_CRATES
        .iter()
        .filter(|c| names.contains(**c))
        .collect();
    assert!(
        found.is_empty(),
        "thumbfarm-api depends on decoders {found:?}"
    );
}

#[test]
fn the_api_binary_links_no_decoder_library() {
    let api = common::binary("thumbfarm-api", "thumbfarm-api");
    let out = Command::new("ldd").arg(&api).output().expect("run ldd");
    assert!(out.status.success(), "ldd {}", api.display());
    let libs = String::from_utf8_lossy(&out.stdout);
    for lib in [
        "libavcodec",
        "libavformat",
        "libavutil",
        "libavfilter",
        "libswscale",
        "libswresample",
        "libheif",
        "libde265",
        "libdav1d",
        "libturbojpeg",
        "libjpeg",
        "liblcms2",
    ] {
        assert!(
            !libs.contains(lib),
            "{} links {lib}:\n{libs}",
            api.display()
        );
    }
    // The worker does link them (libheif statically, its HEVC decoder
    // libde265 dynamically): the check above would notice a decoder.
    let worker = common::binary("thumbfarm-worker", "thumbfarm-worker");
    let out = Command::new("ldd").arg(&worker).output().expect("run ldd");
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(
        libs.contains("libavcodec") && libs.contains("libde265"),
        "{libs}"
    );
}

/// A module path inside a crate (`["render", "decode"]`; empty: the root).
type ModPath = Vec<String>;

fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its test module.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand_use(&format!("{prefix}{p}")))
        .collect()
}

/// Every path the code names: the expanded `use` trees and the inline
/// `crate::…` / `super::…` / `self::…` paths.
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        let Some(end) = after.find(';') else { break };
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            paths.extend(expand_use(&after[..end]));
        }
        rest = &after[end..];
    }
    let bytes = code.as_bytes();
    for head in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(head) {
            if i > 0
                && (bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b':')
            {
                continue;
            }
            let end = code[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| i + e);
            let path = code[i..end].trim_end_matches(':');
            // `crate::{…}` and `super::{…}` groups are `use` trees, expanded above.
            if path.len() > head.len() - 2 {
                paths.push(path.to_string());
            }
        }
    }
    paths
}

/// The module a path names, from `from`'s point of view, when it is one.
fn resolve(
    path: &str,
    from: &ModPath,
    is_mod_rs: bool,
    mods: &BTreeSet<ModPath>,
) -> Option<ModPath> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, rest): (ModPath, &[&str]) = match segs.first() {
        Some(&"crate") => (Vec::new(), &segs[1..]),
        Some(&"self") => (from.clone(), &segs[1..]),
        Some(&"super") => {
            let mut base = from.clone();
            base.pop();
            let mut rest = &segs[1..];
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        // A bare path starting at a child module (`child::item`).
        Some(first) => {
            let mut child = from.clone();
            child.push(first.to_string());
            if mods.contains(&child) {
                (from.clone(), &segs[..])
            } else {
                return None;
            }
        }
        None => return None,
    };
    let _ = is_mod_rs;
    // The longest prefix that is a module.
    let mut best = base.clone();
    for seg in rest {
        if *seg == "*" {
            break;
        }
        base.push(seg.to_string());
        if mods.contains(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// The import graph of one crate's `src/` (the binary root excluded).
fn import_graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let mods: BTreeSet<ModPath> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let from = module_of(src, file);
        let is_mod_rs = file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs");
        let code = code_of(&std::fs::read_to_string(file).expect("read source"));
        let mut to = BTreeSet::new();
        for path in paths_in(&code) {
            if let Some(m) = resolve(&path, &from, is_mod_rs, &mods) {
                if m != from {
                    to.insert(m);
                }
            }
        }
        graph.insert(from, to);
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on: BTreeSet<&'a ModPath>,
        next: usize,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").expect("write");
    std::fs::write(src.join("a/mod.rs"), "mod x;\nuse x::X;\npub struct A;\n").expect("write");
    std::fs::write(src.join("a/x.rs"), "use super::A;\npub struct X;\n").expect("write");
    std::fs::write(src.join("b.rs"), "use crate::{a::{self, A}};\n").expect("write");
    let found = cycles(&import_graph(src));
    assert_eq!(found.len(), 1, "{found:?}");
    let mut comp = found[0].clone();
    comp.sort();
    assert_eq!(
        comp,
        vec![vec!["a".to_string()], vec!["a".into(), "x".into()]]
    );
}

#[test]
fn no_module_imports_form_a_circle() {
    let mut report = Vec::new();
    for krate in ["shared", "worker", "api", "thumbfarm"] {
        let src = root().join("crates").join(krate).join("src");
        let graph = import_graph(&src);
        assert!(
            graph.len() > 1 || krate == "thumbfarm",
            "{krate}: no modules found"
        );
        for comp in cycles(&graph) {
            let names: Vec<String> = comp
                .iter()
                .map(|m| {
                    if m.is_empty() {
                        "lib".into()
                    } else {
                        m.join("::")
                    }
                })
                .collect();
            report.push(format!("{krate}: {}", names.join(" <-> ")));
        }
    }
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}
