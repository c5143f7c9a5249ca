//! The README's configuration table is generated from the binaries' own
//! `--help` (`scripts/config-table.py`): this fails when an option was added,
//! removed or changed without regenerating it.

mod common;

use std::process::Command;

#[test]
fn readme_configuration_table_matches_the_binaries() {
    let api = common::binary("thumbfarm-api", "thumbfarm-api");
    common::binary("thumbfarm-worker", "thumbfarm-worker");
    let bindir = api.parent().expect("target dir");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("scripts/config-table.py")).arg(bindir);
    // Values of variables set in this environment would show in `--help`.
    for (key, _) in std::env::vars() {
        if key.starts_with("THUMBFARM_") || key.starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run scripts/config-table.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).expect("utf-8");
    assert!(table.lines().count() > 40, "too few options:\n{table}");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(
        readme.contains(table.trim_end()),
        "README.md's configuration table is stale: run `python3 scripts/config-table.py > /tmp/t` and paste it in.\n{table}"
    );
}
