//! The layering of `shared/src` that docs/architecture.md draws: which
//! top-level module may use which. A module that reaches past its layer, or
//! a new module without a place in the table, fails here; the table itself
//! has no cycle, so neither has the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module -> the project's modules it may use. Keep docs/architecture.md in step.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("logging", &[]),
    ("tls", &[]),
    ("aws", &[]),
    ("secrets", &[]),
    ("random", &["domain"]),
    ("metrics", &["domain"]),
    ("store", &["domain", "aws", "random"]),
    ("queue", &["domain", "aws"]),
    ("wechat", &["domain", "store", "secrets", "tls", "aws", "metrics"]),
    ("api", &["domain", "store", "queue", "wechat"]),
    ("push", &["domain", "api"]),
    ("config", &["domain", "wechat", "push"]),
    ("app", &["domain", "store", "queue", "wechat", "api", "push", "config", "aws", "secrets", "random", "metrics"]),
    ("dispatch", &["domain", "store", "wechat", "app", "metrics"]),
    ("broadcast", &["domain", "store", "queue", "api", "app", "dispatch", "metrics"]),
    (
        "handlers",
        &["domain", "store", "wechat", "api", "push", "config", "app", "dispatch", "broadcast", "random", "metrics"],
    ),
    ("lambda", &["api", "app", "config", "handlers", "logging", "metrics"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read shared/src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first segment of every `crate::` path in `code` (comments skipped),
/// `crate::{a, b::c}` giving `a` and `b`.
fn crate_uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| s.trim().split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().map(str::to_string);
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(group) => {
                    let group = group.split('}').next().unwrap_or_default();
                    found.extend(group.split(',').filter_map(ident));
                }
                None => found.extend(ident(rest)),
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Each top-level module of shared/src and the modules it uses.
fn actual() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&root).expect("under src");
        let top = rel.iter().next().and_then(|c| c.to_str()).unwrap_or_default().trim_end_matches(".rs").to_string();
        if top == "lib" {
            continue;
        }
        let code = std::fs::read_to_string(&file).expect("read source");
        let uses = graph.entry(top.clone()).or_default();
        uses.extend(crate_uses(&code).into_iter().filter(|m| *m != top));
    }
    graph
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, uses) in actual() {
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!("{module} has no place in LAYERS (tests/tests/architecture.rs, docs/architecture.md)"));
            continue;
        };
        for used in uses.iter().filter(|u| !may.contains(&u.as_str())) {
            wrong.push(format!("{module} uses {used}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_layers_have_no_cycle_and_domain_uses_nothing() {
    // Each module may use only modules listed before it: a strict order, so no cycle.
    for (i, (module, may)) in LAYERS.iter().enumerate() {
        for used in *may {
            let below = LAYERS[..i].iter().any(|(m, _)| m == used);
            assert!(below, "{module} may use {used}, which is not listed before it");
        }
    }
    assert_eq!(LAYERS.first().map(|(m, may)| (*m, may.len())), Some(("domain", 0)));
}

#[test]
fn the_checker_sees_grouped_and_plain_paths() {
    let code = "use crate::{api::X, app};\n// crate::commented\nlet x = crate::store::f();";
    let found: Vec<String> = crate_uses(code).into_iter().collect();
    assert_eq!(found, ["api", "app", "store"]);
}
