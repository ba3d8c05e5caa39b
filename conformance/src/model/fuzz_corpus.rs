//! For the `fuzz_*` tests: the committed seeds (`conformance/fuzz/seeds/<target>`), any
//! local libFuzzer corpus (`conformance/fuzz/corpus/<target>`) and fixed crash reproducers
//! (`conformance/fuzz/regressions/<target>`), and seeds mutated at random.

use std::path::Path;

use proptest::prelude::*;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");

/// Every file of the target's seeds, local corpus and regressions: (path, bytes).
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["seeds", "corpus", "regressions"] {
        let dir = Path::new(FUZZ_DIR).join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for path in files {
            if path.file_name().is_some_and(|n| n == "README.md") {
                continue;
            }
            if let Ok(data) = std::fs::read(&path) {
                out.push((path.display().to_string(), data));
            }
        }
    }
    out
}

/// The committed seeds of `target`, each altered by up to eight random byte edits.
pub fn mutated(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus(target)
        .into_iter()
        .filter(|(n, _)| n.contains("/seeds/"))
        .map(|(_, d)| d)
        .collect();
    let seeds = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds
    };
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..8),
    )
        .prop_map(|(mut data, edits)| {
            for (at, byte, kind) in edits {
                let len = data.len();
                match kind {
                    0 if len > 0 => data[at % len] = byte,
                    1 => data.insert(if len == 0 { 0 } else { at % (len + 1) }, byte),
                    2 if len > 0 => {
                        data.remove(at % len);
                    }
                    _ if len > 0 => data[at % len] ^= 1 << (byte % 8),
                    _ => data.push(byte),
                }
            }
            data
        })
}

/// Runs `f`, and on a panic fails naming the input file.
pub fn no_panic(name: &str, f: impl FnOnce() + std::panic::UnwindSafe) {
    if let Err(e) = std::panic::catch_unwind(f) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{name}: panicked: {msg}");
    }
}
