//! Conda environment files (`name`, `channels`, `dependencies` with a `pip:` list), mapped to
//! PyPI requirements that are installed on top of a runtime.
//!
//! Packages always come from PyPI: conda specs are translated (`numpy=1.26` becomes
//! `numpy==1.26.*`, `pytorch` becomes `torch`), native-only conda packages are rejected, and the
//! runtime's Python, PySpark, Spark and Java can be named only at the versions it has.

use crate::diag::Diagnostic;
use crate::yaml::{self, Node, Pos, Value};

/// The versions a runtime fixes, which an environment may not change.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimePins {
    /// The runtime's name in the catalog, e.g. `3.4`.
    pub runtime: String,
    /// Full Python version, e.g. `3.11.7`.
    pub python: String,
    /// PySpark (and so Spark) version, e.g. `3.4.4`.
    pub pyspark: String,
    /// Java major version, e.g. `17`.
    pub java: String,
}

/// A checked environment: what to install, and what was accepted without installing anything.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CondaEnv {
    pub name: Option<String>,
    /// Recorded only: packages come from the configured PyPI index.
    pub channels: Vec<String>,
    /// PEP 508 requirements, sorted and without duplicates: the environment's identity.
    pub requirements: Vec<String>,
    /// Specs that need nothing installed (`pip`, the runtime's own Python or PySpark).
    pub satisfied_by_runtime: Vec<String>,
}

/// Conda names whose PyPI distribution has another name.
const ALIASES: &[(&str, &str)] = &[
    ("pytorch", "torch"),
    ("py-xgboost", "xgboost"),
    ("py-lightgbm", "lightgbm"),
    ("matplotlib-base", "matplotlib"),
    ("msgpack-python", "msgpack"),
    ("python-graphviz", "graphviz"),
    ("pytables", "tables"),
    ("opencv", "opencv-python"),
    ("py-opencv", "opencv-python"),
    ("tensorflow-base", "tensorflow"),
    ("pyqt", "PyQt5"),
];

/// Conda packages that are native libraries or tools, with no PyPI equivalent to install.
const NATIVE: &[&str] = &[
    "_libgcc_mutex",
    "_openmp_mutex",
    "blas",
    "bzip2",
    "c-ares",
    "ca-certificates",
    "cmake",
    "cudatoolkit",
    "cudnn",
    "curl",
    "gcc",
    "gcc_linux-64",
    "git",
    "gxx",
    "gxx_linux-64",
    "icu",
    "intel-openmp",
    "krb5",
    "libblas",
    "libcurl",
    "libffi",
    "libgcc-ng",
    "libgfortran-ng",
    "liblapack",
    "libopenblas",
    "libstdcxx-ng",
    "libuuid",
    "libxml2",
    "libzlib",
    "ld_impl_linux-64",
    "make",
    "mkl",
    "ncurses",
    "nodejs",
    "openblas",
    "openssl",
    "r-base",
    "readline",
    "sqlite",
    "tk",
    "xz",
    "yaml",
    "zlib",
    "zstd",
];

/// The spec names that stand for the runtime's own pieces.
enum Pinned {
    Python,
    PySpark,
    Java,
}

fn pinned(name: &str) -> Option<Pinned> {
    match name {
        "python" => Some(Pinned::Python),
        "pyspark" | "spark" | "apache-spark" | "py4j" => Some(Pinned::PySpark),
        "openjdk" | "java" | "jdk" | "openjdk-jre" => Some(Pinned::Java),
        _ => None,
    }
}

/// Parses and checks a conda environment file against a runtime.
pub fn parse_conda(text: &str, pins: &RuntimePins) -> Result<CondaEnv, Vec<Diagnostic>> {
    let root = yaml::parse(text).map_err(|e| vec![crate::diag::syntax_error(e)])?;
    let mut diags = Vec::new();
    let Value::Map(entries) = &root.value else {
        return Err(vec![
            Diagnostic::new(
                "(document)",
                format!("a conda file is a mapping, not {}", root.value.kind()),
            )
            .at(Some(root.pos))
            .accepted("`name`, `channels` and `dependencies` at the top level"),
        ]);
    };
    let mut env = CondaEnv {
        name: None,
        channels: Vec::new(),
        requirements: Vec::new(),
        satisfied_by_runtime: Vec::new(),
    };
    let mut saw_dependencies = false;
    for (key, key_pos, node) in entries {
        match key.as_str() {
            "name" => match &node.value {
                Value::Str { text, .. } => env.name = Some(text.clone()),
                Value::Null => {}
                other => diags.push(
                    Diagnostic::new("name", format!("must be a string, not {}", other.kind()))
                        .at(Some(node.pos)),
                ),
            },
            // Recorded for the user; packages come from PyPI whatever the channel.
            "channels" => {
                for (i, item) in seq(node, "channels", &mut diags).iter().enumerate() {
                    match &item.value {
                        Value::Str { text, .. } => env.channels.push(text.clone()),
                        other => diags.push(
                            Diagnostic::new(
                                format!("channels[{i}]"),
                                format!("must be a channel name, not {}", other.kind()),
                            )
                            .at(Some(item.pos)),
                        ),
                    }
                }
            }
            "dependencies" => {
                saw_dependencies = true;
                dependencies(node, pins, &mut env, &mut diags);
            }
            // Conda writes these when exporting; neither changes what is installed here.
            "prefix" | "variables" => {}
            other => diags.push(
                Diagnostic::new(other, "unknown field in a conda file")
                    .at(Some(*key_pos))
                    .accepted(
                        "`name`, `channels`, `dependencies` (`prefix` and `variables` are ignored)",
                    ),
            ),
        }
    }
    if !saw_dependencies {
        diags.push(
            Diagnostic::new("dependencies", "a conda file needs a `dependencies` list")
                .at(Some(root.pos))
                .accepted("dependencies:\n    - pip:\n        - <package>==<version>"),
        );
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    env.requirements.sort_by_key(|r| r.to_ascii_lowercase());
    env.requirements.dedup();
    Ok(env)
}

fn seq<'a>(node: &'a Node, field: &str, diags: &mut Vec<Diagnostic>) -> &'a [Node] {
    match &node.value {
        Value::Seq(items) => items,
        Value::Null => &[],
        other => {
            diags.push(
                Diagnostic::new(field, format!("must be a list, not {}", other.kind()))
                    .at(Some(node.pos)),
            );
            &[]
        }
    }
}

fn dependencies(node: &Node, pins: &RuntimePins, env: &mut CondaEnv, diags: &mut Vec<Diagnostic>) {
    for (i, item) in seq(node, "dependencies", diags).iter().enumerate() {
        let field = format!("dependencies[{i}]");
        match &item.value {
            Value::Str { text, .. } => match conda_requirement(text, pins) {
                Ok(Mapped::Install(req)) => env.requirements.push(req),
                Ok(Mapped::Runtime) => env.satisfied_by_runtime.push(text.trim().to_string()),
                Err(problem) => diags.push(problem.into_diagnostic(field, item.pos, text)),
            },
            // Numbers are what YAML makes of e.g. `- 3.11`; a spec always starts with a name.
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => diags.push(
                Diagnostic::new(field, "must be a package spec such as `numpy=1.26`")
                    .at(Some(item.pos))
                    .value(item.value.display()),
            ),
            Value::Map(entries) => {
                for (key, key_pos, list) in entries {
                    if key != "pip" {
                        diags.push(
                            Diagnostic::new(
                                format!("{field}.{key}"),
                                "only a `pip:` list may appear as a mapping in `dependencies`",
                            )
                            .at(Some(*key_pos))
                            .accepted("- pip:\n    - <package>==<version>"),
                        );
                        continue;
                    }
                    let pip_field = format!("{field}.pip");
                    for (j, entry) in seq(list, &pip_field, diags).iter().enumerate() {
                        let field = format!("{pip_field}[{j}]");
                        let text = match &entry.value {
                            Value::Str { text, .. } => text,
                            other => {
                                diags.push(
                                    Diagnostic::new(
                                        field,
                                        format!(
                                            "must be a requirement such as `requests==2.32.3`, not {}",
                                            other.kind()
                                        ),
                                    )
                                    .at(Some(entry.pos)),
                                );
                                continue;
                            }
                        };
                        match pip_requirement(text, pins) {
                            Ok(Mapped::Install(req)) => env.requirements.push(req),
                            Ok(Mapped::Runtime) => {
                                env.satisfied_by_runtime.push(text.trim().to_string())
                            }
                            Err(problem) => {
                                diags.push(problem.into_diagnostic(field, entry.pos, text))
                            }
                        }
                    }
                }
            }
            Value::Null | Value::Seq(_) => diags.push(
                Diagnostic::new(field, "must be a package spec or a `pip:` list")
                    .at(Some(item.pos)),
            ),
        }
    }
}

enum Mapped {
    /// Install this PEP 508 requirement.
    Install(String),
    /// The runtime already provides it.
    Runtime,
}

struct Problem {
    message: String,
    accepted: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            accepted: None,
        }
    }

    fn accepted(mut self, accepted: impl Into<String>) -> Problem {
        self.accepted = Some(accepted.into());
        self
    }

    fn into_diagnostic(self, field: String, pos: Pos, value: &str) -> Diagnostic {
        let mut d = Diagnostic::new(field, self.message)
            .at(Some(pos))
            .value(value.trim());
        if let Some(accepted) = self.accepted {
            d = d.accepted(accepted);
        }
        d
    }
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Splits `name<rest>` where the name is the leading run of name characters.
fn split_name(spec: &str) -> (&str, &str) {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(spec.len());
    (&spec[..end], spec[end..].trim())
}

/// Translates a conda match spec (`[channel::]name[ version[ build]]`, `name=1.2=build`,
/// `name>=1,<2`) into a PEP 508 requirement.
fn conda_requirement(spec: &str, pins: &RuntimePins) -> Result<Mapped, Problem> {
    let spec = spec.trim();
    let spec = spec.rsplit_once("::").map_or(spec, |(_, rest)| rest).trim();
    let (name, rest) = split_name(spec);
    if !valid_name(name) {
        return Err(Problem::new("not a package spec")
            .accepted("`name`, `name=1.2`, `name==1.2.3` or `name>=1.2,<2` (conda match specs)"));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "pip" {
        return Ok(Mapped::Runtime);
    }
    let version = conda_version(rest).map_err(Problem::new)?;
    if let Some(which) = pinned(&lower) {
        return check_pinned(which, &lower, version.as_deref(), pins);
    }
    if NATIVE.contains(&lower.as_str()) || lower.starts_with("r-") {
        return Err(Problem::new(format!(
            "`{name}` is a native conda package with no PyPI equivalent; Spool installs Python packages from PyPI"
        ))
        .accepted("Python packages by their PyPI names, in `dependencies` or under `pip:`"));
    }
    let pypi = ALIASES
        .iter()
        .find(|(conda, _)| *conda == lower)
        .map_or(name, |(_, pypi)| pypi);
    Ok(Mapped::Install(match version {
        Some(v) => format!("{pypi}{v}"),
        None => pypi.to_string(),
    }))
}

/// The version part of a conda spec as a PEP 440 specifier (`==1.2.*`, `>=1,<2`), if any.
fn conda_version(rest: &str) -> Result<Option<String>, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.contains('|') {
        return Err(
            "alternatives (`|`) cannot be mapped to PyPI; write one version range".to_string(),
        );
    }
    if rest.starts_with('[') {
        return Err("bracketed conda match-spec options cannot be mapped to PyPI".to_string());
    }
    // `=1.2=build` or `1.2 build`: the build string is conda's own and is dropped.
    let (version, fuzzy) = if let Some(v) = rest.strip_prefix("==") {
        (v.split('=').next().unwrap_or(v).trim(), false)
    } else if let Some(v) = rest.strip_prefix('=') {
        (v.split('=').next().unwrap_or(v).trim(), true)
    } else if rest.starts_with(['<', '>', '!', '~']) {
        let v = rest.split_whitespace().collect::<Vec<_>>().join("");
        check_version_chars(&v)?;
        return Ok(Some(v));
    } else {
        (rest.split_whitespace().next().unwrap_or(rest), true)
    };
    let version = version.trim_end_matches('*').trim_end_matches('.');
    if version.is_empty() {
        return Ok(None);
    }
    check_version_chars(version)?;
    if version.starts_with(['<', '>', '!', '~']) {
        return Ok(Some(version.to_string()));
    }
    Ok(Some(if fuzzy {
        format!("=={version}.*")
    } else {
        format!("=={version}")
    }))
}

fn check_version_chars(version: &str) -> Result<(), String> {
    if version.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '.' | '*' | '+' | '!' | '<' | '>' | '=' | ',' | '~')
    }) {
        Ok(())
    } else {
        Err(format!("`{version}` is not a version spec"))
    }
}

/// Checks a `pip:` entry: a PEP 508 requirement by name, without pip options or direct URLs.
fn pip_requirement(text: &str, pins: &RuntimePins) -> Result<Mapped, Problem> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(Problem::new(
            "pip options are not accepted in a conda file; indexes are set in the server's `[environments]` config",
        )
        .accepted("requirements such as `requests==2.32.3` or `tabulate>=0.9`"));
    }
    if text.contains("://") || text.contains(" @ ") || text.starts_with("git+") {
        return Err(Problem::new(
            "direct URLs and paths are not accepted; name a package from the configured index",
        )
        .accepted("requirements such as `requests==2.32.3` or `tabulate>=0.9`"));
    }
    let (name, rest) = split_name(text);
    if !valid_name(name) {
        return Err(Problem::new("not a pip requirement")
            .accepted("requirements such as `requests==2.32.3` or `tabulate>=0.9`"));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "pip" {
        return Ok(Mapped::Runtime);
    }
    // Extras and markers pass through; the version part is what the runtime checks look at.
    let version = rest.trim_start_matches(|c| {
        c != ';' && c != '<' && c != '>' && c != '=' && c != '!' && c != '~'
    });
    let version = version.split(';').next().unwrap_or("").trim();
    if let Some(which) = pinned(&lower) {
        return check_pinned(
            which,
            &lower,
            (!version.is_empty()).then_some(version),
            pins,
        );
    }
    if !rest.is_empty() && !rest.starts_with(['[', '<', '>', '=', '!', '~', ';', '(']) {
        return Err(Problem::new("not a pip requirement")
            .accepted("requirements such as `requests==2.32.3` or `tabulate>=0.9`"));
    }
    Ok(Mapped::Install(
        text.split_whitespace().collect::<Vec<_>>().join(""),
    ))
}

/// A spec naming Python, PySpark/Spark or Java is fine only when the runtime satisfies it.
fn check_pinned(
    which: Pinned,
    name: &str,
    version: Option<&str>,
    pins: &RuntimePins,
) -> Result<Mapped, Problem> {
    let (what, have) = match which {
        Pinned::Python => ("Python", pins.python.as_str()),
        Pinned::PySpark if name == "py4j" => return Ok(Mapped::Runtime),
        Pinned::PySpark => ("PySpark and Spark", pins.pyspark.as_str()),
        Pinned::Java => ("Java", pins.java.as_str()),
    };
    if let Some(clause) = version.and_then(not_a_version) {
        return Err(
            Problem::new(format!("`{clause}` is not a version of {what}"))
                .accepted("a version or a range, such as `3.11`, `==3.11.*` or `>=3.8,<4`"),
        );
    }
    match version {
        None => Ok(Mapped::Runtime),
        Some(spec) if satisfies(have, spec) => Ok(Mapped::Runtime),
        Some(spec) => Err(Problem::new(format!(
            "asks for {what} `{spec}`, but runtime {} has {what} {have}; an environment cannot change the runtime's Python, PySpark, Spark or Java",
            pins.runtime
        ))
        .accepted(
            "remove this line, or choose the runtime with the version you need (`spool runtime list`)",
        )),
    }
}

/// The first clause of a specifier list that names no version (`==abc`), if any.
fn not_a_version(spec: &str) -> Option<&str> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .find(|clause| {
            let want = clause.trim_start_matches(['=', '>', '<', '!', '~']).trim();
            numbers(want).is_empty()
        })
}

/// Whether `version` satisfies a PEP 440-style specifier list (`==3.11.*`, `>=3.8,<4`).
fn satisfies(version: &str, spec: &str) -> bool {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|clause| {
            let (op, want) = ["==", ">=", "<=", "!=", "~=", ">", "<", "="]
                .iter()
                .find_map(|op| clause.strip_prefix(op).map(|rest| (*op, rest.trim())))
                .unwrap_or(("==", clause));
            let prefix = want.strip_suffix(".*").or_else(|| want.strip_suffix('*'));
            let have = numbers(version);
            match (op, prefix) {
                ("==" | "=", Some(prefix)) => {
                    let want = numbers(prefix);
                    have.len() >= want.len() && have[..want.len()] == want[..]
                }
                ("!=", Some(prefix)) => {
                    let want = numbers(prefix);
                    !(have.len() >= want.len() && have[..want.len()] == want[..])
                }
                // `=3.11` in conda and `==3.11` against `3.11.7` both mean "this release line".
                ("==" | "=", None) => {
                    let want = numbers(want);
                    have.len() >= want.len() && have[..want.len()] == want[..]
                }
                ("!=", None) => numbers(want) != have,
                (">=", _) => compare(&have, &numbers(want)).is_ge(),
                ("<=", _) => compare(&have, &numbers(want)).is_le(),
                (">", _) => compare(&have, &numbers(want)).is_gt(),
                ("<", _) => compare(&have, &numbers(want)).is_lt(),
                ("~=", _) => {
                    let want = numbers(want);
                    // A release line needs a number (`~==3.5` leaves `=3.5`, which has none).
                    let keep = want.len().saturating_sub(1).max(1);
                    compare(&have, &want).is_ge()
                        && matches!((have.get(..keep), want.get(..keep)), (Some(a), Some(b)) if a == b)
                }
                _ => false,
            }
        })
}

fn numbers(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn compare(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Renders diagnostics for a conda file, one per line, prefixed with the file and position.
pub fn render_conda_errors(file: &str, diags: &[Diagnostic]) -> String {
    let n = diags.len();
    let mut out = format!(
        "conda file `{file}` has {n} problem{}:\n",
        if n == 1 { "" } else { "s" }
    );
    for d in diags {
        out.push_str(&d.render(file));
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn pins() -> RuntimePins {
        RuntimePins {
            runtime: "3.4".into(),
            python: "3.11.7".into(),
            pyspark: "3.4.4".into(),
            java: "17".into(),
        }
    }

    fn check(text: &str, expected: Expect) {
        let out = match parse_conda(text, &pins()) {
            Ok(env) => format!(
                "install: {}\nruntime: {}\nchannels: {}",
                env.requirements.join(" "),
                env.satisfied_by_runtime.join(" "),
                env.channels.join(" ")
            ),
            Err(diags) => render_conda_errors("conda.yml", &diags),
        };
        expected.assert_eq(&out);
    }

    #[test]
    fn maps_conda_specs_and_pip_entries() {
        check(
            "name: demo\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n  - numpy=1.26\n  - conda-forge::scipy==1.11.4=py311h1234\n  - pytorch>=2.1\n  - toolz 0.12.*\n  - pip:\n      - tabulate==0.9.0\n      - humanize>=4\n      - requests[socks] ; python_version > '3.8'\n",
            expect![[r#"
                install: humanize>=4 numpy==1.26.* requests[socks];python_version>'3.8' scipy==1.11.4 tabulate==0.9.0 toolz==0.12.* torch>=2.1
                runtime: python=3.11 pip
                channels: conda-forge"#]],
        );
    }

    #[test]
    fn same_packages_in_another_order_are_the_same_environment() {
        let a = parse_conda("dependencies:\n  - pip:\n    - b\n    - a\n", &pins()).expect("valid");
        let b = parse_conda(
            "name: x\ndependencies:\n  - a\n  - pip:\n    - b\n    - a\n",
            &pins(),
        )
        .unwrap();
        assert_eq!(a.requirements, b.requirements);
    }

    #[test]
    fn a_runtime_pin_that_is_not_a_version() {
        check(
            "dependencies:\n  - python==abc\n  - pip:\n      - pyspark>=3,<x\n",
            expect![[r#"
                conda file `conda.yml` has 2 problems:
                conda.yml:2:5: `dependencies[0]`: `==abc` is not a version of Python (got `python==abc`)
                  accepted: a version or a range, such as `3.11`, `==3.11.*` or `>=3.8,<4`
                conda.yml:4:9: `dependencies[1].pip[0]`: `<x` is not a version of PySpark and Spark (got `pyspark>=3,<x`)
                  accepted: a version or a range, such as `3.11`, `==3.11.*` or `>=3.8,<4`"#]],
        );
    }

    #[test]
    fn runtime_versions_cannot_change() {
        check(
            "dependencies:\n  - python=3.10\n  - openjdk=11\n  - pyspark=3.4\n  - pip:\n      - pyspark==3.5.1\n",
            expect![[r#"
                conda file `conda.yml` has 3 problems:
                conda.yml:2:5: `dependencies[0]`: asks for Python `==3.10.*`, but runtime 3.4 has Python 3.11.7; an environment cannot change the runtime's Python, PySpark, Spark or Java (got `python=3.10`)
                  accepted: remove this line, or choose the runtime with the version you need (`spool runtime list`)
                conda.yml:3:5: `dependencies[1]`: asks for Java `==11.*`, but runtime 3.4 has Java 17; an environment cannot change the runtime's Python, PySpark, Spark or Java (got `openjdk=11`)
                  accepted: remove this line, or choose the runtime with the version you need (`spool runtime list`)
                conda.yml:6:9: `dependencies[3].pip[0]`: asks for PySpark and Spark `==3.5.1`, but runtime 3.4 has PySpark and Spark 3.4.4; an environment cannot change the runtime's Python, PySpark, Spark or Java (got `pyspark==3.5.1`)
                  accepted: remove this line, or choose the runtime with the version you need (`spool runtime list`)"#]],
        );
    }

    #[test]
    fn unmappable_and_malformed_entries_name_the_line() {
        check(
            "name: bad\ndependencies:\n  - libgcc-ng\n  - r-base=4.2\n  - numpy=1.2|1.3\n  - 3.11\n  - pip:\n      - -e .\n      - mypkg @ file:///tmp/x\nextra: 1\n",
            expect![[r#"
                conda file `conda.yml` has 7 problems:
                conda.yml:3:5: `dependencies[0]`: `libgcc-ng` is a native conda package with no PyPI equivalent; Spool installs Python packages from PyPI (got `libgcc-ng`)
                  accepted: Python packages by their PyPI names, in `dependencies` or under `pip:`
                conda.yml:4:5: `dependencies[1]`: `r-base` is a native conda package with no PyPI equivalent; Spool installs Python packages from PyPI (got `r-base=4.2`)
                  accepted: Python packages by their PyPI names, in `dependencies` or under `pip:`
                conda.yml:5:5: `dependencies[2]`: alternatives (`|`) cannot be mapped to PyPI; write one version range (got `numpy=1.2|1.3`)
                conda.yml:6:5: `dependencies[3]`: must be a package spec such as `numpy=1.26` (got `3.11`)
                conda.yml:8:9: `dependencies[4].pip[0]`: pip options are not accepted in a conda file; indexes are set in the server's `[environments]` config (got `-e .`)
                  accepted: requirements such as `requests==2.32.3` or `tabulate>=0.9`
                conda.yml:9:9: `dependencies[4].pip[1]`: direct URLs and paths are not accepted; name a package from the configured index (got `mypkg @ file:///tmp/x`)
                  accepted: requirements such as `requests==2.32.3` or `tabulate>=0.9`
                conda.yml:10:1: `extra`: unknown field in a conda file
                  accepted: `name`, `channels`, `dependencies` (`prefix` and `variables` are ignored)"#]],
        );
    }

    #[test]
    fn version_checks() {
        assert!(satisfies("3.11.7", "==3.11.*"));
        assert!(satisfies("3.11.7", ">=3.8,<4"));
        assert!(!satisfies("3.11.7", "<3.11"));
        assert!(satisfies("3.4.4", "~=3.4.0"));
        assert!(!satisfies("3.4.4", "~=3.5"));
        assert!(satisfies("17", "==17"));
    }

    #[test]
    fn regression_11_a_compatible_release_without_numbers_is_not_satisfied() {
        // Found by the YAML fuzz test (issue 11): `~=` with no version number sliced past the
        // end of an empty list and panicked.
        assert!(!satisfies("3.4.4", "~==3.5.1"));
        assert!(!satisfies("3.4.4", "~=x"));
        assert!(!satisfies("", "~=3.4"));
        check(
            "dependencies:\n  - pip:\n      - pyspark~==3.5.1\n",
            expect![[r#"
                conda file `conda.yml` has 1 problem:
                conda.yml:3:9: `dependencies[0].pip[0]`: asks for PySpark and Spark `~==3.5.1`, but runtime 3.4 has PySpark and Spark 3.4.4; an environment cannot change the runtime's Python, PySpark, Spark or Java (got `pyspark~==3.5.1`)
                  accepted: remove this line, or choose the runtime with the version you need (`spool runtime list`)"#]],
        );
    }

    #[test]
    fn an_alias_bomb_is_rejected_with_the_file_and_the_limit() {
        let bomb = format!("{}dependencies: *g\n", crate::yaml::ALIAS_BOMB);
        check(
            &bomb,
            expect![[r#"
                conda file `conda.yml` has 1 problem:
                conda.yml:5:7: `(document)`: a list anchored here has 66430 nodes, and with the copy kept for its aliases the document would build 149470, more than the 100000 accepted
                  accepted: documents that build at most 100000 nodes, counting everything an alias repeats; write the values out without aliases"#]],
        );
    }
}
