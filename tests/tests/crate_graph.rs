//! The crate graph of docs/architecture.md holds: each workspace crate depends only on the
//! workspace crates its row allows, so edges only point down and the wallet and the bridge
//! never pull in the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Folder -> the workspace crates (by dependency key) it may depend on, dev-dependencies too.
fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let below_programs = [
        "primitives",
        "rpc-api",
        "p2p",
        "service",
        "keystore",
        "finality",
        "chain",
        "mainchain",
        "sidechain",
        "bridge",
        "wallet",
    ];
    let mut m: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut set = |k, v: &[&'static str]| {
        m.insert(k, v.iter().copied().collect());
    };
    set("primitives", &[]);
    set("service", &[]);
    set("rpc-api", &["primitives"]);
    set("p2p", &["primitives"]);
    set("keystore", &["primitives"]);
    set("finality", &["primitives"]);
    set(
        "chain",
        &["primitives", "finality", "rpc-api", "p2p", "service"],
    );
    set("mainchain", &["chain", "primitives"]);
    set("sidechain", &["chain", "primitives"]);
    set("wallet", &["primitives", "rpc-api", "keystore"]);
    set(
        "bridge",
        &["primitives", "rpc-api", "p2p", "service", "keystore"],
    );
    set("tests", &below_programs);
    set(
        "fuzzing",
        &["primitives", "finality", "chain", "keystore", "bridge"],
    );
    let mut deploy: Vec<&str> = below_programs.to_vec();
    deploy.push("twinpeg-e2e");
    set("deploy", &deploy);
    set("bench", &deploy);
    m
}

fn workspace_crate_deps(folder: &str, names: &BTreeSet<&str>) -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read Cargo.toml");
    let doc: toml::Table = toml::from_str(&text).expect("parse Cargo.toml");
    let mut out = BTreeSet::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = doc.get(section).and_then(|d| d.as_table()) {
            for key in deps.keys() {
                if names.contains(key.as_str()) {
                    out.insert(key.clone());
                }
            }
        }
    }
    out
}

#[test]
fn every_crate_depends_only_on_the_crates_below_it() {
    let allowed = allowed();
    let mut names: BTreeSet<&str> = allowed.keys().copied().collect();
    names.insert("twinpeg-e2e");
    // Every workspace member has a row: a new crate must be placed in the graph.
    let root: toml::Table = toml::from_str(
        &std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .expect("read root Cargo.toml"),
    )
    .expect("parse root Cargo.toml");
    let members: BTreeSet<String> = root["workspace"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    let rows: BTreeSet<String> = allowed.keys().map(|k| k.to_string()).collect();
    assert_eq!(members, rows, "workspace members vs the graph's rows");
    let mut wrong = Vec::new();
    for (folder, ok) in &allowed {
        for dep in workspace_crate_deps(folder, &names) {
            if !ok.contains(dep.as_str()) {
                wrong.push(format!("{folder} -> {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges the graph does not allow: {wrong:?}"
    );
}
