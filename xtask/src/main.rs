//! Project tasks: `cargo xtask ci` (the gate CI runs), `cargo xtask bench` (the benchmark) and
//! `cargo xtask fuzz` (the YAML loaders' fuzz test with a longer budget).

mod bench;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("setup") => setup(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  setup   install what the tests need (the test runtime, idempotent)\n  ci      format check, clippy, unit and integration tests (what CI runs)\n  bench   benchmark: bare Spark vs Spool, jobs, sessions and environments [--runs N] [--only jobs|sessions|envs|api|agents|pipelines|isolation|connect]\n  fuzz    mutate job, conda and attach YAML files against their loaders for longer than CI does [--secs N] (default 60; SPOOL_FUZZ_SEED=<seed> replays a run)"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(repo_root());
    cmd
}

fn step(name: &str, mut cmd: Command) -> anyhow::Result<()> {
    eprintln!("==> {name}");
    let started = std::time::Instant::now();
    let status = cmd.status()?;
    if !status.success() {
        anyhow::bail!("{name} failed ({status})");
    }
    eprintln!("    {name}: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs the YAML loaders' fuzz test (`crates/spool-spec/tests/fuzz.rs`) for `--secs N`
/// seconds (default 60), in release mode for more cases per second. CI runs the same test for
/// 3 s as part of the suite.
fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let secs = match args {
        [] => 60.0,
        [flag, value] if flag == "--secs" => value
            .parse::<f64>()
            .ok()
            .filter(|secs| *secs > 0.0)
            .ok_or_else(|| {
            anyhow::anyhow!("`--secs {value}`: not a positive number of seconds")
        })?,
        _ => anyhow::bail!("usage: cargo xtask fuzz [--secs N]"),
    };
    step(&format!("fuzz the YAML loaders for {secs} s"), {
        let mut cmd = cargo();
        cmd.args([
            "test",
            "--release",
            "--locked",
            "-p",
            "spool-spec",
            "--test",
            "fuzz",
            "--",
            "--nocapture",
        ]);
        // Declared in `spool_core::env::SPOOL_FUZZ_SECS`; `SPOOL_FUZZ_SEED` passes through.
        cmd.env("SPOOL_FUZZ_SECS", secs.to_string());
        cmd
    })
}

/// Installs what the tests need: the Spark runtime the integration tests use (into the
/// machine-wide cache; a no-op when present).
fn setup() -> anyhow::Result<()> {
    step("build", {
        let mut cmd = cargo();
        cmd.args(["build", "--locked", "-p", "spool"]);
        cmd
    })?;
    step("install test runtime 3.4", {
        let mut cmd = Command::new(repo_root().join("target/debug/spool"));
        cmd.args(["runtime", "install", "3.4"]);
        cmd
    })?;
    // Spark Connect needs Spark 4 (`tests/connect.rs`): the newest runtime has it.
    step("install Spark Connect runtime 4.3", {
        let mut cmd = Command::new(repo_root().join("target/debug/spool"));
        cmd.args(["runtime", "install", "4.3"]);
        cmd
    })?;
    // The thin Spark Connect client, alone in a venv: what a user's laptop has (no JVM, no
    // Spark), so a test through it shows nothing but the Connect endpoint is used.
    let connect = cache_dir().join("connect-client");
    if !connect.join("bin/python").exists() {
        step("create the Spark Connect client venv", {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "venv"]).arg(&connect);
            cmd
        })?;
    }
    // 4.2.0 is the newest thin client on PyPI; Connect's protocol lets an older client talk
    // to a newer server, as users' laptops will.
    step("install the Spark Connect thin client (pyspark-client)", {
        let mut cmd = Command::new(connect.join("bin/pip"));
        cmd.args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "pyspark-client==4.2.0",
        ]);
        cmd
    })?;
    // Real Livy clients from PyPI, in a venv of their own (idempotent: pip skips what is there).
    let venv = client_venv();
    if !venv.join("bin/python").exists() {
        step("create the client test venv", {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "venv"]).arg(&venv);
            cmd
        })?;
    }
    // sparkmagic pulls in requests-kerberos, whose pykerberos builds against the Kerberos
    // headers: install them where they are missing and we can (a fresh Debian machine).
    let have_krb5 = Command::new("krb5-config")
        .arg("--version")
        .output()
        .is_ok();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !have_krb5 && is_root && Path::new("/usr/bin/apt-get").exists() {
        step("install Kerberos headers for sparkmagic (libkrb5-dev)", {
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libkrb5-dev",
            ]);
            cmd
        })?;
    }
    // Network isolation applies its rules with nftables (`tests/isolation.rs`).
    let have_nft = Path::new("/usr/sbin/nft").exists();
    if !have_nft && is_root && Path::new("/usr/bin/apt-get").exists() {
        step(
            "install the packet filter for network isolation (nftables)",
            {
                let mut cmd = Command::new("sh");
                cmd.args([
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables)",
            ]);
                cmd
            },
        )?;
    }
    // The studio is tested in a real headless Chromium (Debian's) driven by playwright-core
    // from the npm registry, in a folder of the set-up's own (`tests/studio.rs`).
    if !Path::new("/usr/bin/chromium").exists() && is_root && Path::new("/usr/bin/apt-get").exists()
    {
        step("install Chromium for the studio tests", {
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)",
            ]);
            cmd
        })?;
    }
    let studio = cache_dir().join("studio-test");
    if !studio
        .join(format!("node_modules/playwright-core/{PLAYWRIGHT_MARKER}"))
        .exists()
    {
        std::fs::create_dir_all(&studio)?;
        step("install playwright-core for the studio tests", {
            let mut cmd = Command::new("npm");
            cmd.current_dir(&studio).args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                &format!("playwright-core@{PLAYWRIGHT_VERSION}"),
            ]);
            cmd
        })?;
        std::fs::write(
            studio.join(format!("node_modules/playwright-core/{PLAYWRIGHT_MARKER}")),
            PLAYWRIGHT_VERSION,
        )?;
    }
    // schemathesis fuzzes the native API against its OpenAPI document (`tests/fuzz_api.rs`).
    step(
        "install Livy clients (livy, sparkmagic), schemathesis and prometheus-client",
        {
            let mut cmd = Command::new(venv.join("bin/pip"));
            cmd.args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "livy==0.8.0",
                "sparkmagic==0.23.0",
                "schemathesis==4.32.5",
                // The Prometheus project's own parser checks `/metrics` (`tests/studio.rs`).
                "prometheus-client==0.26.0",
            ]);
            cmd
        },
    )
}

/// The playwright-core the studio tests drive Chromium with, and the file that says the
/// set-up installed that version.
const PLAYWRIGHT_VERSION: &str = "1.65.1";
const PLAYWRIGHT_MARKER: &str = ".spool-installed-1.65.1";

/// Where the Python clients the tests drive are installed (`spool-test` looks there too).
fn client_venv() -> PathBuf {
    cache_dir().join("test-clients")
}

/// The cache the set-up owns (`SPOOL_CACHE_DIR`, default `~/.cache/spool`).
fn cache_dir() -> PathBuf {
    match std::env::var_os("SPOOL_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".cache/spool"),
    }
}

fn ci() -> anyhow::Result<()> {
    let accounts_before = spool_accounts(&read_passwd()).collect();
    step("cargo fmt --check", {
        let mut cmd = cargo();
        cmd.args(["fmt", "--all", "--check"]);
        cmd
    })?;
    step("cargo clippy", {
        let mut cmd = cargo();
        cmd.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]);
        cmd
    })?;
    setup()?;
    let nextest = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let mut cmd = cargo();
    if nextest {
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]);
    } else {
        // Without nextest, binaries run one after another; run each binary's tests one at a
        // time too, as most start Spark JVMs (see `.config/nextest.toml` for why).
        cmd.args([
            "test",
            "--workspace",
            "--locked",
            "--",
            "--test-threads",
            "1",
        ]);
    }
    let tests = step("tests", cmd);
    let accounts = no_account_left(&accounts_before);
    tests.and(accounts)
}

/// `/etc/passwd`, or nothing where there is none.
fn read_passwd() -> String {
    std::fs::read_to_string("/etc/passwd").unwrap_or_default()
}

/// The OS accounts of Spool (`spool-<instance>-<n>`) in a `/etc/passwd` text.
fn spool_accounts(passwd: &str) -> impl Iterator<Item = String> + '_ {
    passwd
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter(|name| name.starts_with("spool-"))
        .map(str::to_string)
}

/// The OS accounts of Spool in `passwd` that are not in `before`, sorted.
fn accounts_left(before: &BTreeSet<String>, passwd: &str) -> Vec<String> {
    let now: BTreeSet<String> = spool_accounts(passwd).collect();
    now.difference(before).cloned().collect()
}

/// Fails, naming them, when the tests left OS accounts of Spool: every test server removes the
/// accounts it made when it finishes, so one that appeared during the run and is still there
/// was leaked. Accounts that were there before the run (another run's) are left alone.
fn no_account_left(before: &BTreeSet<String>) -> anyhow::Result<()> {
    eprintln!("==> no OS account left by the tests");
    let left = accounts_left(before, &read_passwd());
    if !left.is_empty() {
        anyhow::bail!(
            "the tests left {} OS account(s) in /etc/passwd: {}",
            left.len(),
            left.join(", ")
        );
    }
    eprintln!("    no OS account left: ok");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          spool-1e8ace77-1:x:995:993::/nonexistent:/usr/sbin/nologin\n";

    #[track_caller]
    fn check(after: &str, expected: &[&str]) {
        let before = spool_accounts(BEFORE).collect();
        assert_eq!(accounts_left(&before, after), expected);
    }

    #[test]
    fn nothing_is_left_when_the_same_accounts_remain() {
        check(BEFORE, &[]);
    }

    #[test]
    fn an_account_of_another_run_that_was_removed_is_not_left() {
        check("root:x:0:0:root:/root:/bin/bash\n", &[]);
    }

    #[test]
    fn new_spool_accounts_are_left_and_named() {
        check(
            "root:x:0:0:root:/root:/bin/bash\n\
             spool-1e8ace77-1:x:995:993::/nonexistent:/usr/sbin/nologin\n\
             spool-4f00ba12-2:x:997:996::/nonexistent:/usr/sbin/nologin\n\
             spool-4f00ba12-1:x:996:995::/nonexistent:/usr/sbin/nologin\n",
            &["spool-4f00ba12-1", "spool-4f00ba12-2"],
        );
    }

    #[test]
    fn other_accounts_named_like_spool_are_not_spools() {
        check(
            "spool:x:990:990::/nonexistent:/usr/sbin/nologin\n\
             spooler:x:991:991::/nonexistent:/usr/sbin/nologin\n",
            &[],
        );
    }
}
