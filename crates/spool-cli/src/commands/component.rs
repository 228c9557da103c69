//! `spool component create|list|show|archive|restore`: registered components, mirroring
//! `az ml component`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use spool_api_types::ComponentView;
use spool_client::{Client, ClientError};
use spool_spec::{Diagnostic, SpecErrors};

use super::job::create::{base_dir, catalog_from, parse_sets};
use super::job::pipeline::prepare_body;
use crate::{Globals, output};

#[derive(Debug, clap::Subcommand)]
pub enum ComponentCommand {
    /// Register a component version from a component YAML file (`type: spark`) and print it.
    ///
    /// Everything that can be known before a pipeline uses it is checked first, with the
    /// file's line and column: the name, the ports, that `code` and the entry and listed files
    /// exist, that `args` names only declared inputs and outputs (`$[[...]]` sections of
    /// optional inputs are exempt), and a given `conf` (mandatory keys, dynamic allocation).
    /// Then the `code` folder is uploaded as a content-addressed snapshot. Pipelines use the
    /// component as `azureml:<name>:<version>`, `azureml:<name>@latest` or `azureml:<name>`.
    // `--version` is the component's, as in `az ml component`, not the program's.
    #[command(disable_version_flag = true)]
    Create {
        /// The component YAML.
        #[arg(long, short)]
        file: PathBuf,
        /// The version (instead of `version` in the file). Without either, the next one: the
        /// highest integer version of the name plus one, or 1.
        #[arg(long, short)]
        version: Option<String>,
        /// Override a field, e.g. `--set display_name=Prep` or
        /// `--set conf.spark.executor.instances=4`. Repeatable.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// List registered components (every user's: components are workspace-wide): the latest
    /// version of each name, or every version. Archived ones are hidden unless asked for.
    List {
        /// Include archived versions and components.
        #[arg(long)]
        include_archived: bool,
        /// Every version, not only the latest of each name.
        #[arg(long)]
        all_versions: bool,
    },
    /// Show one version of a component. Without `--version` or `--label`, the default version,
    /// which in Spool is the latest (the most recently created version that is not archived).
    // `--version` is the component's, as in `az ml component`, not the program's.
    #[command(disable_version_flag = true)]
    Show {
        /// The component's name.
        #[arg(long, short)]
        name: String,
        /// A version.
        #[arg(long, short, conflicts_with = "label")]
        version: Option<String>,
        /// `latest`: the most recently created version (not the highest).
        #[arg(long, short)]
        label: Option<String>,
    },
    /// Archive a version, or without `--version` the component with all its versions: hidden
    /// from `component list`, still usable in pipelines.
    // `--version` is the component's, as in `az ml component`, not the program's.
    #[command(disable_version_flag = true)]
    Archive {
        /// The component's name.
        #[arg(long, short)]
        name: String,
        /// Only this version.
        #[arg(long, short)]
        version: Option<String>,
    },
    /// Restore an archived version, or without `--version` an archived component. A version
    /// of a component archived as a whole comes back only with the component.
    // `--version` is the component's, as in `az ml component`, not the program's.
    #[command(disable_version_flag = true)]
    Restore {
        /// The component's name.
        #[arg(long, short)]
        name: String,
        /// Only this version.
        #[arg(long, short)]
        version: Option<String>,
    },
}

fn ports(ports: &BTreeMap<String, spool_api_types::PortView>) -> String {
    ports
        .iter()
        .map(|(name, port)| {
            let mut text = format!("{name}: {}", port.kind);
            if let Some(default) = &port.default {
                text.push_str(&format!(" = {default}"));
            }
            if port.optional {
                text.push_str(" (optional)");
            }
            text
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_one(format: output::Format, c: &ComponentView) -> anyhow::Result<()> {
    output::print(format, c, || {
        output::fields(&[
            ("name", c.name.clone()),
            ("version", c.version.clone()),
            ("id", c.id.clone()),
            ("type", c.kind.clone()),
            ("display name", c.display_name.clone().unwrap_or_default()),
            ("description", c.description.clone().unwrap_or_default()),
            ("inputs", ports(&c.inputs)),
            ("outputs", ports(&c.outputs)),
            ("deterministic", c.is_deterministic.to_string()),
            ("code", c.code.clone()),
            (
                "archived",
                if c.archived {
                    "yes".into()
                } else {
                    String::new()
                },
            ),
            ("created", format!("{} by {}", c.created_at, c.created_by)),
        ])
    })
}

pub async fn run(command: ComponentCommand, globals: &Globals) -> anyhow::Result<i32> {
    match command {
        ComponentCommand::Create {
            file,
            version,
            sets,
        } => {
            let client = globals.client()?;
            let component = create(&client, &file, version, &sets).await?;
            print_one(globals.format(), &component)?;
            Ok(0)
        }
        ComponentCommand::List {
            include_archived,
            all_versions,
        } => {
            let list = globals
                .client()?
                .components(include_archived, all_versions)
                .await?;
            output::print(globals.format(), &list, || {
                let mut table = output::table(&[
                    "NAME",
                    "VERSION",
                    "DISPLAY NAME",
                    "TYPE",
                    "CREATED",
                    "BY",
                    "ARCHIVED",
                ]);
                for c in &list.components {
                    table.add_row(vec![
                        c.name.clone(),
                        c.version.clone(),
                        c.display_name.clone().unwrap_or_default(),
                        c.kind.clone(),
                        c.created_at.clone(),
                        c.created_by.clone(),
                        if c.archived {
                            "yes".into()
                        } else {
                            String::new()
                        },
                    ]);
                }
                table
            })?;
            Ok(0)
        }
        ComponentCommand::Show {
            name,
            version,
            label,
        } => {
            let component = globals
                .client()?
                .component(&name, version.as_deref(), label.as_deref())
                .await?;
            print_one(globals.format(), &component)?;
            Ok(0)
        }
        ComponentCommand::Archive { name, version } => {
            set_archived(globals, &name, version.as_deref(), true).await
        }
        ComponentCommand::Restore { name, version } => {
            set_archived(globals, &name, version.as_deref(), false).await
        }
    }
}

async fn set_archived(
    globals: &Globals,
    name: &str,
    version: Option<&str>,
    archived: bool,
) -> anyhow::Result<i32> {
    globals
        .client()?
        .set_component_archived(name, version, archived)
        .await?;
    let what = match version {
        Some(version) => format!("version `{version}` of `{name}`"),
        None => format!("`{name}` (every version)"),
    };
    if archived {
        eprintln!("[spool] archived {what}; pipelines may still use it");
    } else {
        eprintln!("[spool] restored {what}");
    }
    Ok(0)
}

/// Loads and checks a component file, uploads its code and registers it. A rejected component
/// is a `SpecErrors` error in its file, every problem with its position (the server's too).
async fn create(
    client: &Client,
    file: &std::path::Path,
    version: Option<String>,
    sets: &[String],
) -> anyhow::Result<ComponentView> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("read component file `{}`", file.display()))?;
    let label = file.display().to_string();
    let mut sets = parse_sets(sets, None)?;
    if let Some(version) = version {
        sets.push(("version".into(), version));
    }
    let loaded = spool_spec::parse_component(&text, &label, &sets, false)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {}", warning.render(&label));
    }
    let mut spec = loaded.spec;
    let positions = loaded.positions;
    let pos = |field: &str| positions.get(field).copied();
    let base = base_dir(file);
    let catalog = catalog_from(&client.catalog().await?);
    let problems = spool_spec::registration::check_component(&spec, &positions, &catalog);
    if !problems.is_empty() {
        return Err(SpecErrors {
            file: label,
            diagnostics: problems,
        }
        .into());
    }
    // The code, entry and listed files exist (relative to the component file); the code is
    // uploaded.
    prepare_body(
        client,
        &mut spec.body,
        &base,
        &label,
        "",
        &pos,
        &mut BTreeMap::new(),
    )
    .await?;
    match client.create_component(serde_json::to_value(&spec)?).await {
        Ok(component) => Ok(component),
        // The server's objection is reported like a local one: at the field's position.
        Err(e @ ClientError::Api { .. }) => {
            let field = e.target().unwrap_or("name").to_string();
            let diagnostic = Diagnostic {
                pos: pos(&field).or_else(|| pos(field.split(['.', '[']).next().unwrap_or(""))),
                field,
                message: e.to_string(),
                value: None,
                accepted: None,
            };
            Err(SpecErrors {
                file: label,
                diagnostics: vec![diagnostic],
            }
            .into())
        }
        Err(e) => Err(e.into()),
    }
}
