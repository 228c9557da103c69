//! The `--help` of every command and subcommand, as snapshots: a change of a flag, a default or
//! a description shows up in review. Review changes with `cargo insta review`.

use clap::CommandFactory;

/// Every command of the tree with its full name (`spool job create`), the root first.
fn commands(command: &clap::Command, name: String, out: &mut Vec<(String, clap::Command)>) {
    out.push((name.clone(), command.clone()));
    for sub in command.get_subcommands() {
        // Clap's own `help` subcommand only repeats what the snapshots already show.
        if sub.get_name() == "help" {
            continue;
        }
        commands(sub, format!("{name} {}", sub.get_name()), out);
    }
}

#[test]
fn help_of_every_command() {
    let mut root = spool_cli::Cli::command().term_width(100);
    // Propagates the global flags and full names into every subcommand, as parsing does.
    root.build();
    let mut all = Vec::new();
    commands(&root, "spool".into(), &mut all);
    assert!(all.len() > 30, "found only {} commands", all.len());

    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots/help");
    // What the environment adds: set variables and the home directory.
    settings.add_filter(r"\[env: (\w+)=[^\]]*\]", "[env: $1=]");
    if let Some(home) = std::env::var_os("HOME") {
        settings.add_filter(&regex_escape(&home.to_string_lossy()), "[HOME]");
    }
    settings.bind(|| {
        for (name, mut command) in all {
            let help = command.render_long_help().to_string();
            insta::assert_snapshot!(name.replace(' ', "-"), help, &format!("{name} --help"));
        }
    });
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}
