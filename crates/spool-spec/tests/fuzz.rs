//! Mutation fuzzing of the YAML loaders: job files (`parse_job`, `parse_command_job`), conda
//! files (`parse_conda`), attach files (`parse_attach`) and workspace files
//! (`parse_workspace`). Seeds are the YAML files in `examples/` and the integration tests'
//! fixtures (Azure ML sample-style jobs, command jobs, conda files) plus the attach and conda
//! samples below; each case mutates one by bytes, tokens and lines and feeds it to every loader.
//!
//! Properties: no loader panics; every rejection has a position inside the document (or
//! `--set`) and renders with the file name and it; no case takes long (`yaml::parse`'s limits
//! bound the work).
//!
//! The budget is time, not cases: `SPOOL_FUZZ_SECS` (default 3 s, for CI); `cargo xtask fuzz
//! --secs N` runs longer in release mode. A failure prints its seed: `SPOOL_FUZZ_SEED=<seed>`
//! replays the run. Inputs that once failed are kept as regression cases in `REGRESSIONS`.
//!
//! Hand-rolled rather than `proptest`: the budget is wall-clock time (proptest counts cases),
//! mutating real files finds more than generating YAML from a grammar, and it needs no new
//! dependency.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spool_core::env::{SPOOL_FUZZ_SECS, SPOOL_FUZZ_SEED};
use spool_spec::compute::parse_attach;
use spool_spec::conda::{RuntimePins, parse_conda, render_conda_errors};
use spool_spec::network::parse_workspace;
use spool_spec::yaml::Pos;
use spool_spec::{Catalog, Diagnostic, azure_instance_types, parse_command_job, parse_job};

/// The longest a single case may take. Far above what a bounded parse needs even on a loaded
/// machine in a debug build (milliseconds), far below what an unbounded alias bomb takes.
const SLOW_CASE: Duration = Duration::from_secs(2);

const ATTACH_SEEDS: &[&str] = &[
    "name: team-pool\ntype: sparkpool\nmaster_url: spark://10.0.0.5:7077\nmaster_ui_url: http://10.0.0.5:8080     # default: port 8080 of the master's host\nidentity:\n  type: system_assigned\n",
    "$schema: https://azuremlschemas.azureedge.net/latest/compute.schema.json\nname: pool\ntype: sparkpool\nmaster_url: spark://h:7077\nmaster_ui_url: http://h:9090/\ndescription: team pool\nidentity:\n  type: user_assigned\n  user_assigned_identities:\n    - resource_id: /subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/etl\n    - name: backup\ntags:\n  team: data\n",
    "name: synapse-pool\ntype: synapsespark\nresource_id: /subscriptions/x/resourceGroups/y/providers/Microsoft.Synapse/workspaces/w/bigDataPools/p\nidentity:\n  type: system_assigned\n",
];

const CONDA_SEEDS: &[&str] = &[
    "name: demo\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n  - numpy=1.26\n  - conda-forge::scipy==1.11.4=py311h1234\n  - pytorch>=2.1\n  - toolz 0.12.*\n  - pip:\n      - tabulate==0.9.0\n      - requests[socks] ; python_version > '3.8'\n",
    "dependencies: [python=3.10, openjdk=11, pyspark=3.4, {pip: [pyspark==3.5.1, -e ., \"mypkg @ file:///tmp/x\"]}]\nprefix: /opt/env\nvariables: {A: 1}\n",
];

/// Sample-style documents that use what the seed files do not: anchors, flow style, tags.
const YAML_SEEDS: &[&str] = &[
    "type: command\ncode: ./src\ncommand: >-\n  python a.py ${{inputs.x}} $[[--y ${{inputs.y}}]]\n  --out ${{outputs.o}}\ninputs: {x: {type: uri_file, path: ./d.txt, mode: ro_mount}, y: 3}\noutputs: {o: {type: uri_folder}}\nenvironment: {conda_file: {dependencies: [pip]}}\nenvironment_variables: {A: b}\nlimits: {timeout: 60}\nresources: {instance_count: 1}\ncompute: serverless\n",
    "type: spark\ncode: ./src\nentry: {file: main.py}\nconf: &conf {spark.driver.cores: 1, spark.driver.memory: 2g, spark.executor.cores: 2, spark.executor.memory: 2g, spark.executor.instances: 2}\ntags: {copy: !!str 1}\nidentity: {type: managed}\nresources: {instance_type: standard_e4s_v3, runtime_version: '3.5'}\nargs: |\n  --conf ${{inputs.x}}\ninputs: {x: {type: string, default: \"a\\tb\"}}\n",
];

/// Inputs that once broke a property, kept so that they stay fixed.
const REGRESSIONS: &[&str] = &[
    // A syntax error at the end of a file without a final newline was put on the line after it.
    "type: spark\ncod",
    // `MemoryMb::parse` split the unit off inside a two-byte character and panicked.
    "type: spark\nconf:\n  spark.driver.memory: 1\u{e9}\n",
    // Nodes and errors at the end of a file without a final newline were put past its end.
    "type: spark\ncode: ./src\nentry: {file: main.py}\nconf: &conf ",
    " !!str # ",
    // `~=` with no version number (`~==3.5.1`) sliced an empty list in the conda loader.
    "dependencies:\n  - pip:\n      - pyspark~==3.5.1\n",
    // A lone `\r` is a line break for the parser.
    "type: spark\n\r  x: 1\nresources:\n  a: 1\n  a: 2\n",
];

/// Tokens that YAML, the job schema or number parsing treat specially.
const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "? ",
    "&a ",
    "*a",
    "&b [*a, *a]",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!local ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "#",
    "|",
    ">-",
    "|+2",
    "\"",
    "'",
    "\\",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\t",
    "\r",
    "\r\n",
    "\u{feff}",
    "\u{0}",
    "é",
    "\u{10ffff}",
    "\"\\uD800\"",
    "\"\\x\"",
    "\"\\U0010FFFF\"",
    "~",
    "null",
    "True",
    "-0",
    "0x1F",
    "1e400",
    ".nan",
    "-.inf",
    "99999999999999999999",
    "-9223372036854775808",
    "4294967295",
    "4294967296",
    "0.0000001",
    "1g",
    "99999999999t",
    "-1",
    "${{",
    "${{inputs.",
    "}}",
    "${{outputs.x}}",
    "[--x ${{inputs.y}}]",
    "azureml://datastores/",
    "azureml:",
    "../",
    "spark.executor.instances: ",
    "spark.dynamicAllocation.enabled: true\n",
    "type: spark\n",
    "entry:\n  file: ",
    "dependencies:\n  - ",
    "pip:\n  - ",
    "identity: {type: ",
    "compute: ",
    "python=",
    "pyspark==",
    "==",
    ">=",
    ";",
    "@",
    "::",
];

#[test]
fn yaml_loaders_survive_mutated_input() {
    let secs: f64 = std::env::var(SPOOL_FUZZ_SECS)
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{SPOOL_FUZZ_SECS}=`{s}`: not a number of seconds"))
        })
        .unwrap_or(3.0);
    let seed: u64 = std::env::var(SPOOL_FUZZ_SEED)
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{SPOOL_FUZZ_SEED}=`{s}`: not an integer"))
        })
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let seeds = seeds();
    let oracle = Oracle::new();
    for text in seeds
        .iter()
        .map(String::as_str)
        .chain(REGRESSIONS.iter().copied())
    {
        oracle.check(text, &[], seed, 0);
    }

    let mut rng = Rng(seed);
    let budget = Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut cases = 0u64;
    let mut slowest = Duration::ZERO;
    let mut slowest_case = (0, 0);
    while started.elapsed() < budget {
        cases += 1;
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            text = mutate(&text, &seeds, &mut rng);
        }
        let sets = if rng.below(4) == 0 {
            vec![random_set(&mut rng)]
        } else {
            Vec::new()
        };
        let took = oracle.check(&text, &sets, seed, cases);
        if took > slowest {
            slowest = took;
            slowest_case = (cases, text.len());
        }
    }
    eprintln!(
        "fuzz: {cases} cases in {:.1} s from {} seeds, slowest {slowest:?} (case {}, {} bytes) ({SPOOL_FUZZ_SEED}={seed})",
        started.elapsed().as_secs_f64(),
        seeds.len(),
        slowest_case.0,
        slowest_case.1,
    );
    assert!(cases > 0, "no case ran in {secs} s");
}

/// The seed files, read from the repository, and the inline samples.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["examples", "crates/spool/tests/fixtures"] {
        yaml_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut seeds: Vec<String> = files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("read seed `{}`: {e}", path.display()))
        })
        .collect();
    assert!(
        seeds.len() >= 10,
        "expected the examples and fixtures as seeds, found {files:?}"
    );
    seeds.extend(
        [ATTACH_SEEDS, CONDA_SEEDS, YAML_SEEDS]
            .concat()
            .into_iter()
            .map(String::from),
    );
    seeds
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read `{}`: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
}

/// Runs every loader on a document and checks the properties.
struct Oracle {
    catalog: Catalog,
    pins: RuntimePins,
}

impl Oracle {
    fn new() -> Oracle {
        Oracle {
            catalog: Catalog {
                runtimes: vec!["3.4".into(), "3.5".into(), "4.3".into()],
                default_runtime: "3.4".into(),
                instance_types: azure_instance_types(),
            },
            pins: RuntimePins {
                runtime: "3.4".into(),
                python: "3.11.7".into(),
                pyspark: "3.4.4".into(),
                java: "17".into(),
            },
        }
    }

    /// Checks one document; returns how long the slowest loader took.
    fn check(&self, text: &str, sets: &[(String, String)], seed: u64, case: u64) -> Duration {
        let fail = |what: &str, detail: &str| -> ! {
            panic!(
                "case {case} ({SPOOL_FUZZ_SEED}={seed}): {what}\n{detail}\ninput ({} bytes), --set {sets:?}:\n{text:?}",
                text.len()
            )
        };
        type Rejection = Option<(Vec<Diagnostic>, String)>;
        let loaders: [(&str, &str, &dyn Fn() -> Rejection); 5] = [
            ("parse_job", "job.yml", &|| {
                parse_job(text, "job.yml", sets, &self.catalog)
                    .err()
                    .map(|e| (e.diagnostics.clone(), e.to_string()))
            }),
            ("parse_command_job", "cmd.yml", &|| {
                parse_command_job(text, "cmd.yml", sets)
                    .err()
                    .map(|e| (e.diagnostics.clone(), e.to_string()))
            }),
            ("parse_conda", "conda.yml", &|| {
                parse_conda(text, &self.pins).err().map(|diags| {
                    let rendered = render_conda_errors("conda.yml", &diags);
                    (diags, rendered)
                })
            }),
            ("parse_attach", "pool.yml", &|| {
                parse_attach(text).err().map(|diags| {
                    let rendered: Vec<String> =
                        diags.iter().map(|d| d.render("pool.yml")).collect();
                    (diags, rendered.join("\n"))
                })
            }),
            ("parse_workspace", "workspace.yml", &|| {
                parse_workspace(text).err().map(|diags| {
                    let rendered: Vec<String> =
                        diags.iter().map(|d| d.render("workspace.yml")).collect();
                    (diags, rendered.join("\n"))
                })
            }),
        ];
        let lines = spool_spec::yaml::lines(text);
        let mut slowest = Duration::ZERO;
        for (loader, file, run) in loaders {
            let started = Instant::now();
            let rejection = match catch_unwind(AssertUnwindSafe(run)) {
                Ok(rejection) => rejection,
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    fail(&format!("{loader} panicked"), &message)
                }
            };
            let mut took = started.elapsed();
            if took > SLOW_CASE {
                // Once more, so that a pause of a loaded machine is not taken for a slow parse.
                let again = Instant::now();
                let _ = catch_unwind(AssertUnwindSafe(run));
                took = again.elapsed();
                if took > SLOW_CASE {
                    fail(&format!("{loader} took {took:?} (twice)"), "");
                }
            }
            slowest = slowest.max(took);
            let Some((diags, rendered)) = rejection else {
                continue;
            };
            if diags.is_empty() {
                fail(&format!("{loader} rejected with no diagnostic"), &rendered);
            }
            for d in &diags {
                match d.pos {
                    Some(Pos::At { line, column }) => {
                        let inside = line >= 1
                            && line <= lines.len()
                            && column >= 1
                            && column <= lines[line - 1].chars().count() + 1;
                        if !inside {
                            fail(
                                &format!(
                                    "{loader}: position {line}:{column} is outside the document ({} lines)",
                                    lines.len()
                                ),
                                &rendered,
                            );
                        }
                        let at = format!("{file}:{line}:{column}: ");
                        if !rendered.contains(&at) {
                            fail(&format!("{loader}: `{at}` not in the message"), &rendered);
                        }
                    }
                    Some(Pos::Override) if !sets.is_empty() => {}
                    _ => fail(
                        &format!("{loader}: a rejection without a position: {d:?}"),
                        &rendered,
                    ),
                }
            }
        }
        slowest
    }
}

/// One mutation of `text`: bytes, tokens, lines, or a line from another seed.
fn mutate(text: &str, seeds: &[String], rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = |rng: &mut Rng, len: usize| rng.below(len + 1);
    match rng.below(10) {
        // Overwrite a byte (possibly breaking UTF-8, which the lossy conversion turns into U+FFFD).
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] = match rng.below(3) {
                0 => rng.below(256) as u8,
                _ => b":-?&*!|>#%@`'\"[]{},\\ \t\n0."[rng.below(25)],
            };
        }
        // Insert a token.
        1 | 2 => {
            let token = TOKENS[rng.below(TOKENS.len())];
            let i = at(rng, bytes.len());
            bytes.splice(i..i, token.bytes());
        }
        // Delete a range.
        3 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            let n = 1 + rng.below(16.min(bytes.len() - i));
            bytes.drain(i..i + n);
        }
        // Truncate.
        4 => bytes.truncate(at(rng, bytes.len())),
        _ => {
            let mut lines: Vec<String> = String::from_utf8_lossy(&bytes)
                .split('\n')
                .map(String::from)
                .collect();
            let i = rng.below(lines.len());
            match rng.below(6) {
                0 => {
                    let line = lines[i].clone();
                    lines.insert(i, line);
                }
                1 if lines.len() > 1 => {
                    lines.remove(i);
                }
                2 => {
                    let j = rng.below(lines.len());
                    lines.swap(i, j);
                }
                3 => lines[i].insert_str(0, &" ".repeat(1 + rng.below(4))),
                4 => lines[i] = lines[i].trim_start().to_string(),
                _ => {
                    let other: Vec<&str> = seeds[rng.below(seeds.len())].split('\n').collect();
                    lines.insert(i, other[rng.below(other.len())].to_string());
                }
            }
            return lines.join("\n");
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A `--set path=value` as the CLI passes them, sometimes malformed.
fn random_set(rng: &mut Rng) -> (String, String) {
    const PATHS: &[&str] = &[
        "conf.spark.executor.instances",
        "conf.spark.dynamicAllocation.enabled",
        "resources.runtime_version",
        "resources.instance_type",
        "entry.file",
        "entry.file.deeper",
        "inputs.x.path",
        "tags.a.b.c",
        "args",
        "type",
        "a..b",
        "",
        ".",
        "conf.",
    ];
    const VALUES: &[&str] = &[
        "1",
        "0",
        "-1",
        "3.5",
        "true",
        "",
        "x",
        "4294967296",
        "${{inputs.x}}",
        "[1",
        "{}",
    ];
    (
        PATHS[rng.below(PATHS.len())].to_string(),
        VALUES[rng.below(VALUES.len())].to_string(),
    )
}

/// SplitMix64: small, seedable, and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
