//! The core crate's layering, checked on its sources: a module imports only from its own layer
//! or the layers below it, no two modules import each other in a circle, and no test support
//! (fuzzer, generator, fixture loading) is part of the public API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, lowest layer first. A module may import from its own layer and below.
const LAYERS: &[(&str, usize)] = &[
    ("error", 0),
    ("threads", 1),
    ("result", 1),
    ("state", 2),
    ("block", 3),
    ("verify", 4),
    ("engine", 5),
    ("trace", 6),
    ("conformance", 6),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file as a path of segments (`engine/block_stm/mod.rs` -> `engine::block_stm`).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, String>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().expect("name").to_string_lossy().to_string();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            modules(&path, &p, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut p = prefix.to_vec();
            if name != "mod" && name != "lib" {
                p.push(name);
            }
            out.insert(p, std::fs::read_to_string(&path).expect("readable source"));
        }
    }
}

/// Source without comments, so that docs naming a module do not count as imports.
fn code_only(source: &str) -> String {
    source.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The `crate::` paths a source uses, with `use crate::{a::b, c::{d, e}}` groups expanded.
fn crate_paths(source: &str) -> Vec<Vec<String>> {
    fn group(chars: &[char], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix.clone();
        let mut word = String::new();
        while *i < chars.len() {
            let c = chars[*i];
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                *i += 1;
            } else if c == ':' {
                if !word.is_empty() {
                    path.push(std::mem::take(&mut word));
                }
                *i += 1;
            } else if c == '{' {
                *i += 1;
                group(chars, i, path.clone(), out);
            } else if c == ',' || c == '}' {
                if !word.is_empty() {
                    path.push(std::mem::take(&mut word));
                }
                out.push(std::mem::replace(&mut path, prefix.clone()));
                *i += 1;
                if c == '}' {
                    return;
                }
            } else if c.is_whitespace() && chars.get(*i + 1).is_some_and(|n| *n != ':') && !word.is_empty() {
                // `x as y` or the end of a path in an expression.
                path.push(std::mem::take(&mut word));
                out.push(std::mem::replace(&mut path, prefix.clone()));
                if prefix.is_empty() {
                    return;
                }
                while *i < chars.len() && chars[*i] != ',' && chars[*i] != '}' {
                    *i += 1;
                }
            } else {
                if !word.is_empty() {
                    path.push(std::mem::take(&mut word));
                }
                out.push(path);
                return;
            }
        }
    }
    let code = code_only(source);
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let chars: Vec<char> = code[at + "crate::".len()..].chars().take(4000).collect();
        let mut i = 0;
        group(&chars, &mut i, Vec::new(), &mut out);
    }
    out
}

/// The module a path names: its longest prefix that is a module file.
fn resolve(path: &[String], mods: &BTreeMap<Vec<String>, String>) -> Option<Vec<String>> {
    (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| mods.contains_key(p))
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut mods = BTreeMap::new();
    modules(&src(), &[], &mut mods);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, source) in &mods {
        let deps = edges.entry(m.clone()).or_default();
        for p in crate_paths(source) {
            if let Some(target) = resolve(&p, &mods).filter(|t| t != m) {
                deps.insert(target);
            }
        }
    }
    edges
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let rank = |m: &[String]| {
        let top = m.first().map(String::as_str).unwrap_or("lib");
        LAYERS.iter().find(|(name, _)| *name == top).map(|(_, r)| *r)
    };
    let edges = graph();
    assert!(edges.len() > 30, "found the modules: {}", edges.len());
    let mut wrong = Vec::new();
    for (m, deps) in &edges {
        if m.is_empty() {
            continue; // lib.rs re-exports from every layer
        }
        let r = rank(m).unwrap_or_else(|| panic!("top-level module {:?} has no layer in LAYERS", m[0]));
        for d in deps {
            if rank(d).is_some_and(|dr| dr > r) {
                wrong.push(format!("{} imports {}", m.join("::"), d.join("::")));
            }
        }
    }
    assert!(wrong.is_empty(), "imports upward: {wrong:#?}");
}

#[test]
fn no_module_imports_itself_through_others() {
    let edges = graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for d in edges.get(m).into_iter().flatten() {
            match state.get(d) {
                Some(1) => {
                    let start = stack.iter().position(|s| s == d).expect("on the stack");
                    return Some(stack[start..].iter().chain([d]).map(|s| s.join("::")).collect());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(d, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            if let Some(circle) = visit(m, &edges, &mut state, &mut Vec::new()) {
                panic!("import circle: {}", circle.join(" -> "));
            }
        }
    }
}

#[test]
fn test_support_is_not_public_api() {
    let lib = code_only(&std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs"));
    for name in ["fuzz", "generate", "fixture"] {
        assert!(!lib.contains(&format!("mod {name}")), "lib.rs exposes the test-support module {name}");
    }
}
